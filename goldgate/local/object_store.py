"""The local R2's durability: every object the stack's bucket holds is also kept on disk, and put back when
the stack comes up again. moto's S3 server keeps objects in memory while the stack's "D1" outlives the host:
without this a restart left `completed` jobs whose results answered 404.

Runs in the moto server's process (the stack host) and wraps the S3 backend's put, delete and get for the one
bucket. An object is `<sha256 of key>.bin` and, written last, its `.json` record (key, metadata, upload time,
size, sha256); once saved, its body is read from the file (`SavedBody`). A restored object keeps its upload
time as Last-Modified, as R2 does.

Expiry follows the cloud bucket's lifecycle rules (infra/components/storage.py): objects under `results/` and
`inputs/` go `storage.result_ttl_days` after upload, at start and in `expire` (the host runs it as R2 runs its
rules), and nothing while the clock reads far past the uploads (`clock_refusal`).

R2 serves only the bytes it stored, never half an object: a GET hashes the whole body before answering, and
one that does not match its record is 404 NoSuchKey (HEAD and start compare the size; an older record without
a sha256 is judged by its size only). A damaged body is kept aside under `damaged/` with its evidence, said
once (`object_store.body_lost`), and a result's is deleted `result_ttl_days` after it was found.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from werkzeug.exceptions import InternalServerError
from werkzeug.wrappers import Response

from goldgate.errors import StateError
from goldgate.files import open_regular
from goldgate.local.state import read_small_bytes, read_small_text
from goldgate.logs import JsonLogger
from goldgate.ops.backup import MAX_QUIET_DAYS, clock_jump
from service.inputs import INPUTS_PREFIX  # the cloud inputs rule's prefix: uploads go as results do
from service.results import RESULTS_PREFIX  # the cloud results rule's prefix (backups/ has a rule of its own)

MAX_RECORD_BYTES = 1024 * 1024  # an object's key and metadata: S3 caps the key at 1 KiB, user metadata at 2 KiB
MAX_OBJECT_BYTES = 5 * 1024**3  # R2's single PUT limit: no object the bucket took is bigger
MAX_LOGGED_KEYS = 50  # an `object_store.expired` line names this many keys (a month of results can go at once)
DAMAGED_DIR = "damaged"  # under the bucket's directory: damaged bodies kept as evidence, never read back as objects
_HASH_CHUNK = 1 << 20
EXPIRING_PREFIXES = (RESULTS_PREFIX, INPUTS_PREFIX)


class DurableBucket:
    """Write-through copy of one bucket of this process's moto S3 backend."""

    def __init__(self, root: Path, bucket: str, log: JsonLogger, result_ttl_days: int) -> None:
        self.root = root
        self.bucket = bucket
        self.log = log
        self.result_ttl_days = result_ttl_days
        self._lock = threading.Lock()
        self._refusal_logged: datetime | None = None  # where the gap last named in the host log begins
        self._loss_lock = threading.Lock()  # two GETs finding the same body gone remove and log it once
        self._moto_delete: Any = None  # moto's own delete, set by attach: `_lost` removes the files itself
        self._unwritable_refused = 0  # uploads refused since the last one saved: `object_store.unwritable` said once

    def _paths(self, key: str) -> tuple[Path, Path]:
        name = hashlib.sha256(key.encode()).hexdigest()
        return self.root / f"{name}.bin", self.root / f"{name}.json"

    def save(self, key: str, value: bytes, metadata: dict[str, Any], uploaded: datetime) -> str:
        """Keep the object on disk; `uploaded` is its Last-Modified (moto's naive UTC). Returns the body's sha256,
        which its record keeps: every GET checks the body against it."""
        self.root.mkdir(parents=True, exist_ok=True)
        body, meta = self._paths(key)
        digest = hashlib.sha256(value).hexdigest()
        record = {"key": key, "metadata": metadata, "uploaded": _naive_utc(uploaded).isoformat(),
                  "bytes": len(value), "sha256": digest}
        with self._lock:
            for path, data in ((body, value), (meta, json.dumps(record).encode())):
                tmp = path.with_suffix(path.suffix + ".tmp")
                try:
                    tmp.write_bytes(data)
                    os.replace(tmp, path)  # the .json goes last: an object without one was never fully saved
                except BaseException:
                    with contextlib.suppress(OSError):  # a part written before the disk filled is no object
                        tmp.unlink()
                    raise
        return digest

    def unwritable(self, key: str, exc: OSError) -> None:
        """Say once per burst that the bucket's directory refuses writes (read-only, its permissions, a full disk):
        every upload is answered 500 meanwhile, and each job whose upload fails fails. The burst ends with the next
        object saved (`writable`)."""
        with self._lock:
            self._unwritable_refused += 1
            if self._unwritable_refused > 1:
                return
        path = exc.filename if isinstance(exc.filename, str) else str(self.root)
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self.log.warning("object_store.unwritable", message=(
            f"cannot save {key} to {path} ({code}: {exc.strerror or exc}): the local R2 stand-in answers each upload "
            f"500 until its directory {self.root} takes writes again (its owner and mode, a read-only mount, free "
            "space); each job whose upload fails fails. Logged once until an upload is saved again"),
            data={"path": path, "errno": exc.errno, "errno_name": code, "key": key, "dir": str(self.root)})

    def writable(self) -> None:
        """An object was saved: a burst of refused writes (`unwritable`) is over, and the next refusal is said again."""
        if self._unwritable_refused:
            with self._lock:
                self._unwritable_refused = 0

    def forget(self, key: str) -> None:
        body, meta = self._paths(key)
        with self._lock:
            meta.unlink(missing_ok=True)
            body.unlink(missing_ok=True)

    def _records(self, report: bool) -> Iterator[tuple[Path, dict[str, Any], datetime]]:
        """Each readable saved record, with its object's upload time; an unreadable one is named when `report`."""
        for meta in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            try:
                # Read as state files are: a FIFO in a record's place would hang the host's start for good.
                record = json.loads(read_small_text(meta, MAX_RECORD_BYTES) or "null")
                uploaded = _uploaded(record.get("uploaded"), meta.with_suffix(".bin"), meta)
                if not isinstance(record["key"], str):
                    raise TypeError(f"its key is {type(record['key']).__name__}, not a string")
            except (OSError, StateError, ValueError, KeyError, TypeError, AttributeError) as exc:
                if report:
                    self._unreadable(meta, exc, "skipped")
                continue
            yield meta, record, uploaded

    def _unreadable(self, meta: Path, exc: BaseException, outcome: str) -> None:
        self.log.warning("object_store.unreadable", message=f"{meta}: {type(exc).__name__}: {exc}; {outcome}")

    def _expired(self, key: str, uploaded: datetime, now: datetime) -> bool:
        """As R2's lifecycle rules delete: a result object, or a client's uploaded input image, once
        `result_ttl_days` have passed since its upload."""
        return key.startswith(EXPIRING_PREFIXES) and now - uploaded >= timedelta(days=self.result_ttl_days)

    def clock_refusal(self, uploads: list[tuple[str, datetime]], now: datetime) -> tuple[datetime, datetime] | None:
        """The gap that makes `now` untrustworthy for expiry, or None. R2's rule runs on Cloudflare's clock; here it
        is this machine's, and a clock stepped years ahead would expire every result at once. The upload times
        (written by the same clock, before the step) are the evidence: a result due to expire that is followed by
        no upload for more than result_ttl_days + MAX_QUIET_DAYS (to the next upload, or to now) means the clock is
        not believed and nothing expires, also after uploads made under the wrong clock (backup.clock_jump)."""
        if not any(self._expired(key, uploaded, now) for key, uploaded in uploads):
            return None
        return clock_jump((uploaded for _, uploaded in uploads), now,
                          timedelta(days=self.result_ttl_days + MAX_QUIET_DAYS))

    def _log_refusal(self, gap: tuple[datetime, datetime], now: datetime) -> None:
        """Once per gap (the sweep runs hourly, and each reads a later now): why the results uploaded up to the gap
        did not expire, and what to do, in the host log. Those uploaded after it expire as usual."""
        before, after = gap
        if before == self._refusal_logged:
            return
        self._refusal_logged = before
        days = (after - before).days
        then = "this machine's clock reads" if after == now else "the next is of"
        self.log.warning("object_store.clock_ahead", message=(
            f"no result uploaded up to {before.isoformat()}Z expired: it is the last upload for {days} days ({then} "
            f"{after.isoformat()}Z), more than storage.result_ttl_days ({self.result_ttl_days}) + {MAX_QUIET_DAYS}, "
            "as a clock stepped ahead would make it. Set the clock right (`date -u`; the next hourly sweep expires "
            f"by it); if it was right all along, stop the stack (`goldgate down`: a running one serves each result "
            f"from its file), then delete by hand the results in {self.root} whose record "
            "(<sha256>.json, and its .bin) says they were uploaded up to then"),
            data={"result_ttl_days": self.result_ttl_days, "last_upload_before": f"{before.isoformat()}Z",
                  "next": f"{after.isoformat()}Z", "dir": str(self.root)})

    def saved(self, now: datetime | None = None) -> list[tuple[str, bytes, dict[str, Any], datetime]]:
        """Each saved object not expired by `now`: key, body, metadata and upload time."""
        return [(key, body, metadata, uploaded) for key, body, metadata, uploaded, *_ in self._saved(now)]

    def _saved(self, now: datetime | None = None
               ) -> Iterator[tuple[str, bytes, dict[str, Any], datetime, Path, str | None]]:
        """`saved`, one object at a time (a start puts back each before it reads the next), with its body's file and
        the sha256 its record keeps (None for a record from before records carried it)."""
        now = _naive_utc(now or datetime.now(UTC))
        records = list(self._records(report=True))
        gap = self.clock_refusal([(record["key"], uploaded) for _, record, uploaded in records], now)
        for meta, record, uploaded in records:
            if self._expired(record["key"], uploaded, now) and (gap is None or uploaded >= gap[1]):
                continue  # expire() removes it; one whose files it could not remove is no result either
            try:
                body = read_small_bytes(meta.with_suffix(".bin"), MAX_OBJECT_BYTES)
                metadata = dict(record["metadata"])
            except (OSError, StateError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self._unreadable(meta, exc, "skipped")
                continue
            # A record saved before records carried the size shows only a missing body; one without the sha256,
            # a body of another size.
            stored = record["bytes"] if type(record.get("bytes")) is int else None
            sha256 = record["sha256"] if _is_sha256(record.get("sha256")) else None
            damage = Damage.of(body, stored, sha256)
            if damage is not None:
                self._lost(record["key"], damage, record)
                continue
            yield record["key"], body, metadata, uploaded, meta.with_suffix(".bin"), sha256

    def _lost(self, key: str, damage: Damage, record: dict[str, Any] | None = None) -> None:
        """Take `key`, whose body is no longer what was stored, out of the bucket's files and say so: its body and
        a record of what was stored and what was found are kept aside (`damaged/`) for an operator to inspect."""
        body, _ = self._paths(key)
        after = "find what changes files under the stack's objects/ (docs/RUNBOOK.md, \"A result the store no longer holds\")"
        try:
            kept = self._keep_aside(key, damage, record)
        except OSError as exc:  # a full disk, a directory that refuses the move: the next start tries again
            kept = None
            outcome = f"its files could not be kept aside ({type(exc).__name__}: {exc}) and are left where they are"
        else:
            if kept is None:
                self._uploaded_again(key, body, damage)
                return
            outcome = f"kept aside as evidence: {kept} (with {kept.with_suffix('.json').name}: what was stored and found)"
            # Out of the bucket, not out of its retention: a result's evidence goes as results do (_expire_damaged).
            ends = (f", or they are deleted {self.result_ttl_days} days after they were found (storage.result_ttl_days)"
                    if key.startswith(RESULTS_PREFIX) else "")
            after = f"{after}, then delete the kept files: nothing reads them{ends}"
        self.log.warning("object_store.body_lost", message=(
            f"{key}: its body {body} {damage.says()}; {outcome}. It is no object any more and is never served as "
            "one: the bucket answers 404 for it, and GET /api/result 404 result_missing if a job recorded it as its "
            f"result. Run that job again for a new result; {after}"),
            data={"key": key, "damage": damage.kind, "stored_bytes": damage.stored_bytes,
                  "found_bytes": damage.found_bytes, "stored_sha256": damage.stored_sha256,
                  "found_sha256": damage.found_sha256, "kept": None if kept is None else str(kept),
                  "dir": str(self.root)})

    def _uploaded_again(self, key: str, body: Path, damage: Damage) -> None:
        """Say that `key`, found damaged, was uploaded again before its files were kept aside: the damaged object
        left the bucket (the read that found it answered 404), the new one stands, and no evidence is left (the
        upload wrote its body over the damaged one)."""
        self.log.warning("object_store.body_lost", message=(
            f"{key}: its body {body} {damage.says()}; the object left the bucket (the read that found it answered "
            "404), but the key was uploaded again before its files were kept aside: the new upload is whole and is "
            "served, and nothing was kept aside (the upload wrote its body over the damaged one). Find what changes "
            "files under the stack's objects/ (docs/RUNBOOK.md, \"A result the store no longer holds\")"),
            data={"key": key, "damage": damage.kind, "stored_bytes": damage.stored_bytes,
                  "found_bytes": damage.found_bytes, "stored_sha256": damage.stored_sha256,
                  "found_sha256": damage.found_sha256, "kept": None, "dir": str(self.root)})

    def _keep_aside(self, key: str, damage: Damage, record: dict[str, Any] | None) -> Path | None:
        """Write into `damaged/` what was stored and found, move the body of `key` (whatever is in its place) beside
        it under a name no later loss reuses, and remove the record last: the object is out of the bucket's files,
        its evidence is not. Returns where the body is (or would be, when none was there); None, touching nothing,
        when the key's files are whole again: uploaded anew since the read that found the damage (that read's 404
        took the damaged object out of the bucket, and a create-only PUT then saved the new one).

        The evidence goes first, whole (a temporary file renamed into place): a full disk that stops it leaves the
        body and its record where they are, as the caller's line then says, for the next start to find again. The
        body moved first, a failed write left the record of a body no longer there (reported "missing" at the next
        start, with a second evidence file) and an evidence file cut short."""
        body, meta = self._paths(key)
        aside = self.root / DAMAGED_DIR
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        kept = aside / f"{body.stem}-{stamp}.bin"
        evidence = kept.with_suffix(".json")
        with self._lock:  # save() writes under it too: what is read here is not half an upload
            on_disk = None
            with contextlib.suppress(OSError, StateError, ValueError):
                on_disk = json.loads(read_small_text(meta, MAX_RECORD_BYTES) or "null")
            if _whole(body, on_disk):
                return None
            record = record if record is not None else on_disk
            found = {"key": key, "found_at": datetime.now(UTC).isoformat(), **damage.to_dict(),
                     "body": kept.name if damage.kind != "missing" else None, "record": record}
            aside.mkdir(parents=True, exist_ok=True)
            _write_whole(evidence, json.dumps(found, indent=1, default=str).encode())
            try:
                os.replace(body, kept)
            except FileNotFoundError:
                pass  # missing: the evidence says so
            except OSError:
                with contextlib.suppress(OSError):  # nothing moved: no evidence of a keep-aside that did not happen
                    evidence.unlink()
                raise
            meta.unlink(missing_ok=True)
        return kept

    def _body_lost(self, backend: Any, key_name: str, key: Any, damage: Damage | None = None) -> bool:
        """Whether the saved body of moto's `key` is gone or no longer its size (or, `damage` given, found damaged by
        a read); if so the object leaves the bucket (its files kept aside), once, as R2 serves no object but the
        one it stored. A body moto wrote anew is in memory."""
        saved = getattr(key, "_value_buffer", None)
        if not isinstance(saved, SavedBody) or saved.in_memory:
            return False
        if damage is None:
            found = saved.found_size()
            if found == key.size:
                return False
        with self._loss_lock:
            bucket = backend.buckets.get(self.bucket)
            if bucket is None or bucket.keys.get(key_name) is not key:
                return True  # another read removed it meanwhile, and said so
            self._moto_delete(backend, self.bucket, key_name)
            self._lost(key_name, damage or Damage.found_in(saved.path, key.size, saved.sha256))
        return True

    def expire(self, now: datetime | None = None) -> list[str]:
        """Remove every object under `results/` or `inputs/` that is `result_ttl_days` old by `now`: from the bucket (a later GET
        answers 404, as R2's does once its lifecycle rule ran) and from the disk; and what was kept aside of a
        damaged result `result_ttl_days` after it was found (`_expire_damaged`). Returns the keys it removed."""
        now = _naive_utc(now or datetime.now(UTC))
        gone: list[str] = []
        records = list(self._records(report=False))  # saved() names the unreadable ones at start
        gap = self.clock_refusal([(record["key"], uploaded) for _, record, uploaded in records], now)
        if gap is not None:  # those uploaded after the gap were stamped by the clock that reads now: they expire
            self._log_refusal(gap, now)
        for meta, record, uploaded in records:
            key = record["key"]
            if not self._expired(key, uploaded, now) or (gap is not None and uploaded < gap[1]):
                continue
            try:
                for backend in _backends():
                    bucket = backend.buckets.get(self.bucket)
                    if bucket is not None and key in bucket.keys:
                        backend.delete_object(self.bucket, key)  # once attached, the delete also removes the files
                with self._lock:
                    meta.unlink(missing_ok=True)  # the record first: a body without one is no object
                    meta.with_suffix(".bin").unlink(missing_ok=True)
            except OSError as exc:  # a directory in a body's place: the result is gone from the bucket all the same
                self._unreadable(meta, exc, "expired, but its files could not be removed")
                continue
            gone.append(key)
        kept_aside = self._expire_damaged([(record["key"], uploaded) for _, record, uploaded in records], now)
        if gone or kept_aside:
            self.log.info("object_store.expired", data={
                "objects": len(gone), "result_ttl_days": self.result_ttl_days, "keys": gone[:MAX_LOGGED_KEYS],
                "dir": str(self.root), "damaged": len(kept_aside), "damaged_files": kept_aside[:MAX_LOGGED_KEYS]})
        return gone

    def _evidence(self) -> Iterator[tuple[Path, str | None, datetime]]:
        """Each evidence file kept aside under `damaged/` (`_keep_aside`): its path, the key it names (None when it
        cannot be read: one cut short by a full disk before the evidence was written whole) and when the damage was
        found, as it says (else the file's mtime: it was written then)."""
        aside = self.root / DAMAGED_DIR
        for path in sorted(aside.glob("*.json")) if aside.is_dir() else []:
            key = found = None
            with contextlib.suppress(OSError, StateError, ValueError, KeyError, TypeError, AttributeError):
                said = json.loads(read_small_text(path, 2 * MAX_RECORD_BYTES) or "null")  # the record, and more
                key = said["key"] if isinstance(said["key"], str) else None
                found = _naive_utc(datetime.fromisoformat(said["found_at"]))
            if found is None:
                try:
                    found = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
                except OSError:
                    continue
            yield path, key, found

    def _expire_damaged(self, uploads: list[tuple[str, datetime]], now: datetime) -> list[str]:
        """Remove what was kept aside of a damaged result (its evidence and body) `result_ttl_days` after it was
        found: out of the bucket is not out of its retention, and the cloud holds no copy of a result past it. One
        whose key cannot be read is taken for a result's (the bucket holds results). Not while the clock is not
        believed (`clock_refusal`, over the uploads and the times damage was found: the same clock wrote both).
        Returns the evidence files' names."""
        evidence = [(path, RESULTS_PREFIX if key is None else key, found) for path, key, found in self._evidence()]
        gap = self.clock_refusal(uploads + [(key, found) for _, key, found in evidence], now)
        gone = []
        for path, key, found in evidence:
            if not self._expired(key, found, now) or (gap is not None and found < gap[1]):
                continue
            try:
                with self._lock:
                    path.with_suffix(".bin").unlink(missing_ok=True)  # the body first: the evidence file finds it
                    path.unlink(missing_ok=True)
            except OSError as exc:  # a directory in a body's place
                self._unreadable(path, exc, "expired, but the files kept aside could not be removed")
                continue
            gone.append(path.name)
        return gone

    def _damaged_on_read(self, backend: Any, key_name: str, key: Any) -> Callable[[Damage], None]:
        """What a read of moto's `key` that found its body damaged calls: the object leaves the bucket (its files
        kept aside), once."""
        def damaged(damage: Damage) -> None:
            self._body_lost(backend, key_name, key, damage)

        return damaged

    def attach(self) -> None:
        """Put the saved objects back into the (new, empty) bucket, but for those expired while the stack was down,
        then keep every change on disk."""
        from moto.s3.models import S3Backend

        backend_put, backend_delete = S3Backend.put_object, S3Backend.delete_object
        backend_get = S3Backend.get_object
        self._moto_delete = backend_delete
        now = datetime.now(UTC)
        self.expire(now)
        self._restore(backend_put, now)
        self._write_through(S3Backend, backend_put, backend_delete, backend_get)

    def _restore(self, backend_put: Callable[..., Any], now: datetime) -> None:
        """Put each saved object not expired by `now` back into the bucket, served from its file."""
        restored = 0
        for backend in _backends():
            if self.bucket in backend.buckets:
                for key, value, metadata, uploaded, body, sha256 in self._saved(now):
                    restored_key = backend_put(backend, self.bucket, key, value)
                    restored_key.set_metadata(metadata)
                    restored_key.last_modified = uploaded  # moto stamps the put: the restart's time, not R2's
                    _read_from_disk(restored_key, body, sha256, self._damaged_on_read(backend, key, restored_key))
                    restored += 1
        if restored:
            self.log.info("object_store.restored", data={"objects": restored, "dir": str(self.root)})

    def _keep(self, backend: Any, key_name: str, key: Any, backend_delete: Callable[..., Any]) -> None:
        """Save an object moto just stored and serve it from its file; one the disk refuses leaves the
        bucket."""
        try:
            digest = self.save(key_name, key.value, dict(key.metadata), key.last_modified)
            damaged = self._damaged_on_read(backend, key_name, key)
            _read_from_disk(key, self._paths(key_name)[0], digest, damaged)
        except BaseException as exc:
            # Served only once it is on disk: the PUT fails (500), and the uploader's retry creates it anew.
            # Held in memory, the retry of a create-only write was answered 412, which the worker takes for
            # its own earlier write: the job completed, and its result was gone after the next restart.
            # (goldgate's writers never overwrite, so no older object is lost with it.)
            backend_delete(backend, self.bucket, key_name)
            # A directory that refuses the write may refuse the removal too.
            with contextlib.suppress(OSError):
                self.forget(key_name)
            if isinstance(exc, OSError):  # the disk's answer: a 500 as R2 gives it, one line, no traceback
                self.unwritable(key_name, exc)
                raise StoreUnwritable() from exc
            raise
        self.writable()

    def _write_through(self, s3_backend: Any, backend_put: Callable[..., Any],
                       backend_delete: Callable[..., Any], backend_get: Callable[..., Any]) -> None:
        """Wrap moto's put, delete and get for this bucket: a put saved, a delete forgotten, a get checked."""
        durable = self

        def put_object(backend: Any, bucket_name: str, key_name: str, value: bytes, *args: Any,
                       **kwargs: Any) -> Any:
            key = backend_put(backend, bucket_name, key_name, value, *args, **kwargs)
            if bucket_name == durable.bucket:
                set_metadata = key.set_metadata

                def set_and_save(*a: Any, **kw: Any) -> None:  # the S3 layer sets Content-Type after the put
                    set_metadata(*a, **kw)
                    durable._keep(backend, key_name, key, backend_delete)

                key.set_metadata = set_and_save
                durable._keep(backend, key_name, key, backend_delete)
            return key

        def delete_object(backend: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
            result = backend_delete(backend, bucket_name, key_name, *args, **kwargs)
            if bucket_name == durable.bucket:
                durable.forget(key_name)
            return result

        def get_object(backend: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
            # Every read of an object comes here: GET, HEAD, a create-only PUT's look for an existing key.
            key = backend_get(backend, bucket_name, key_name, *args, **kwargs)
            if bucket_name != durable.bucket or key is None:
                return key
            return None if durable._body_lost(backend, key_name, key) else key

        s3_backend.put_object = put_object
        s3_backend.delete_object = delete_object
        s3_backend.get_object = get_object


def _read_from_disk(key: Any, body: Path, sha256: str | None = None,
                    damaged: Callable[[Damage], None] | None = None) -> None:
    """Serve moto's `key` from its saved body instead of moto's copy in memory: a stack kept every result it
    stored in the host's memory for `storage.result_ttl_days` (about 20 KB a job: 1.4 GB after a week of 10,000
    jobs a day, measured by bench/soak.py). The body on disk is the object as saved, and is never rewritten
    while its key lives (writes are create-only; a new put is a new moto key). Its ETag (the MD5 moto computes
    from the body the first time it is asked) is computed now, from the bytes uploaded: not later, from a file
    that may no longer hold them."""
    key.etag  # noqa: B018 - computed and cached by moto while the body is still the uploaded one
    with key.lock:
        key._value_buffer = SavedBody(body, key.size, sha256, damaged)


class SavedBody:
    """The file-like object moto reads an object's body through (`FakeKey._value_buffer`: seek, read, truncate,
    write, close), over the body saved on disk: nothing of it stays in memory between reads. Each read opens the
    file, so no descriptor is held per object. Should moto write the key's value anew, the written bytes are kept
    in memory from then on, as moto's own buffer keeps them. A body whose file is no longer `size` bytes is
    not read at all (BodyLost): what is left of it is never answered as the object. A read of the whole body (every
    GET's: moto answers from the bytes in memory) is checked against `sha256` too, on the very bytes it returns:
    other bytes are never answered as the object either; `damaged` takes the object out of the bucket and the read
    answers 404 NoSuchKey (moto's MissingKey), as R2 does for a key it does not hold."""

    def __init__(self, path: Path, size: int, sha256: str | None = None,
                 damaged: Callable[[Damage], None] | None = None) -> None:
        self.path = path
        self.size = size
        self.sha256 = sha256
        self._damaged = damaged
        self._pos = 0
        self._written: io.BytesIO | None = None
        self.closed = False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check()
        if self._written is not None:
            return self._written.seek(offset, whence)
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self.path.stat().st_size
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        self._pos = offset
        return offset

    def tell(self) -> int:
        self._check()
        return self._written.tell() if self._written is not None else self._pos

    @property
    def in_memory(self) -> bool:
        return self._written is not None

    def found_size(self) -> int | None:
        """The size of the body's file now; None when no file is there (a directory is no body either)."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def read(self, size: int | None = -1) -> bytes:
        self._check()
        if self._written is not None:
            return self._written.read(size)
        whole = self._pos == 0 and (size is None or size < 0)
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            if self._damaged is None:
                raise
            # Gone since the GET's look: another read kept it aside meanwhile (or a hand deleted it, and the next
            # look says so). A 404, as the next GET gets, not a 500 to retry.
            from moto.s3.exceptions import MissingKey

            raise MissingKey() from None
        with f:
            # Checked on the open file: one cut between the GET's look (_body_lost) and this read fails the
            # read (a 500 the reader retries, and the retry's look finds it gone), not a short body as whole.
            found = os.fstat(f.fileno()).st_size
            if found != self.size:
                raise BodyLost(f"{self.path} has {found} bytes, but the object was stored with {self.size}")
            f.seek(self._pos)
            data = f.read(-1 if size is None else size)
        if whole and self.sha256 is not None and (digest := hashlib.sha256(data).hexdigest()) != self.sha256:
            damage = Damage.of(data, self.size, self.sha256, digest)
            if self._damaged is not None:
                self._damaged(damage)
            from moto.s3.exceptions import MissingKey  # moto's own 404 NoSuchKey, which its S3 layer answers

            raise MissingKey()
        self._pos += len(data)
        return data

    def truncate(self, size: int | None = None) -> int:
        return self._in_memory().truncate(size)

    def write(self, data: bytes) -> int:
        return self._in_memory().write(data)

    def _in_memory(self) -> io.BytesIO:
        """The body as a file in memory from now on, at the same position (a write or truncate changes it)."""
        self._check()
        if self._written is None:
            self._written = io.BytesIO(self.path.read_bytes())
            self._written.seek(self._pos)
        return self._written

    def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if self.closed:  # as a closed file answers; moto's __getstate__ expects it of a deleted key
            raise ValueError("I/O operation on closed file.")


class StoreUnwritable(InternalServerError):
    """An upload the bucket's directory refused (`DurableBucket.unwritable` says why, once): answered as R2 answers a
    write it failed, 500 InternalError in S3's XML, which the uploader retries; moto's app otherwise let the OSError
    through, and Flask wrote its traceback to the host's stderr log for every refused upload."""

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an '
                "internal error. Please try again.</Message></Error>")
        return Response(body, status=500, content_type="application/xml")


class BodyLost(OSError):
    """A saved body's file changed size under a read: no longer the object it was stored as."""


@dataclass(frozen=True)
class Damage:
    """What a saved body was found to be, against what was stored: `kind` "missing" (no file, or no regular file, in
    its place), "cut_short" (fewer bytes than stored), "appended" (the bytes stored, then more) or "other_bytes"
    (other bytes: more of them than stored, or as many with another sha256)."""

    kind: str
    stored_bytes: int | None
    found_bytes: int | None
    stored_sha256: str | None
    found_sha256: str | None

    @classmethod
    def of(cls, body: bytes | None, stored: int | None, sha256: str | None,
           digest: str | None = None) -> Damage | None:
        """The damage of `body` (None: missing), or None when it is the object stored as far as the record tells."""
        if body is None:
            return cls("missing", stored, None, sha256, None)
        digest = digest or hashlib.sha256(body).hexdigest()
        if stored is not None and len(body) < stored:
            kind = "cut_short"
        elif stored is not None and len(body) > stored:
            kind = ("appended" if sha256 is not None and hashlib.sha256(body[:stored]).hexdigest() == sha256
                    else "other_bytes")
        elif sha256 is not None and digest != sha256:
            kind = "other_bytes"
        else:
            return None
        return cls(kind, stored, len(body), sha256, digest)

    @classmethod
    def found_in(cls, path: Path, stored: int, sha256: str | None) -> Damage:
        """The damage of the body file at `path`, which a look found missing or not `stored` bytes. Read in chunks:
        the file may be far bigger than stored."""
        try:
            with path.open("rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise IsADirectoryError(str(path))
                whole, head, found = hashlib.sha256(), hashlib.sha256(), 0
                while chunk := f.read(_HASH_CHUNK):
                    whole.update(chunk)
                    if found < stored:
                        head.update(chunk[:stored - found])
                    found += len(chunk)
        except OSError:  # gone, or a directory in its place
            return cls("missing", stored, None, sha256, None)
        kind = ("cut_short" if found < stored else
                "appended" if found > stored and sha256 is not None and head.hexdigest() == sha256 else "other_bytes")
        return cls(kind, stored, found, sha256, whole.hexdigest())

    def says(self) -> str:
        """What was found, for the log line."""
        stored = f"the {self.stored_bytes} bytes stored" if self.stored_bytes is not None else "what was stored"
        if self.kind == "missing":
            return "is missing (deleted outside goldgate: a disk cleanup, a copy without it?)"
        if self.kind == "cut_short":
            return (f"is cut short: {self.found_bytes} bytes where {self.stored_bytes} were stored (a crash, a full "
                    "disk, a partial copy?)")
        if self.kind == "appended":
            return (f"holds {stored} followed by {(self.found_bytes or 0) - (self.stored_bytes or 0)} more "
                    "(appended to outside goldgate)")
        was = f" with sha256 {self.stored_sha256}" if self.stored_sha256 else ""
        return (f"holds other bytes than stored: {self.found_bytes} bytes with sha256 {self.found_sha256}, where "
                f"{self.stored_bytes if self.stored_bytes is not None else 'some'} bytes{was} were stored (written "
                "over outside goldgate, or a disk error)")

    def to_dict(self) -> dict[str, Any]:
        return {"damage": self.kind, "stored_bytes": self.stored_bytes, "found_bytes": self.found_bytes,
                "stored_sha256": self.stored_sha256, "found_sha256": self.found_sha256}


def _whole(body: Path, record: Any) -> bool:
    """Whether the file at `body` is the object `record` (a saved record, as read) says was stored: its size, then
    its sha256, read in chunks (an object may be gigabytes). False for a record from before records carried the
    sha256 (nothing to prove it by), and for anything but a regular file (opened without waiting: a named pipe in
    its place would hang the reader)."""
    if not isinstance(record, dict) or not _is_sha256(record.get("sha256")) or type(record.get("bytes")) is not int:
        return False
    try:
        fd = open_regular(body, os.O_RDONLY)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_size != record["bytes"]:
            return False
        digest = hashlib.sha256()
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == record["sha256"]


def _write_whole(path: Path, data: bytes) -> None:
    """`data` at `path`, all of it or nothing: written beside it and renamed into place, the part written before a
    full disk stopped it removed."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _naive_utc(value: datetime) -> datetime:
    """`value` as moto keeps its times: UTC without a zone."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _uploaded(recorded: Any, body: Path, record: Path) -> datetime:
    """An object's upload time: as its record says, or, for a record saved before records carried it (or one edited
    into something that is no time), its body's mtime: the body is written when the object is uploaded and never
    again (a restore does not save it anew). With the body gone, the record's own (written just after it):
    such an object is lost all the same, and its record must not be skipped as unreadable at every start."""
    if isinstance(recorded, str):
        try:
            return _naive_utc(datetime.fromisoformat(recorded))
        except ValueError:
            pass
    try:
        mtime = body.stat().st_mtime
    except FileNotFoundError:
        mtime = record.stat().st_mtime
    return datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)


def _backends() -> list[Any]:
    from moto.s3.models import s3_backends

    found = []
    for account in list(s3_backends.keys()):
        for region in list(s3_backends[account].keys()):
            found.append(s3_backends[account][region])
    return found
