"""Operations: the D1 disaster-recovery drill, the readiness checklist, the metrics report."""
