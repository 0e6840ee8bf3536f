"""goldgate's Pulumi program: STAGING and PROD stacks (RunPod endpoint, R2, D1, the API Worker).

Declarative only; `infra.program.run` is the whole program, `infra/__main__.py` its entry."""
