def test_create_then_complete(svc):
    job = svc.create()
    img = svc.put_result(job["job_id"])
    status, body, _ = svc.deliver(job["job_id"], svc.completed(job["job_id"], [img]))
    assert status == 200 and body == {"applied": True, "reason": "applied", "status": "completed"}, body
    status, body, _ = svc.call("GET", f"/api/status/{job['job_id']}")
    print(body)
    assert body["status"] == "completed"
