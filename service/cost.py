"""cost_estimate_usd of a job: price per GPU-second x GPU count x billed seconds.

Billed seconds are RunPod's executionTime rounded UP to whole seconds (RunPod bills serverless
per second of execution; queue time is not billed). The price is the stack's
`price_per_gpu_second` when set, otherwise the flex price of the worker-reported GPU type from
the vendor table below (USD per GPU-second, offline fallback). Unknown GPU and no configured
price -> no estimate (None), never a guess.

A job RunPod ran again after /retry is billed for every attempt: its estimate is the sum of the
estimates of the attempts the service applied (docs/WEBHOOK_SEMANTICS.md, "Cost of a retried job", says which). An attempt without an
estimate adds nothing; the sum is None only when no attempt has one.
"""

from __future__ import annotations

import math
import re

# (pattern over the upper-cased GPU name, USD per GPU-second); more specific names first.
FLEX_PRICES: tuple[tuple[str, float], ...] = (
    (r"\bB200\b", 0.00240),
    (r"\bH200\b", 0.00155),
    (r"\bH100\b", 0.00116),
    (r"\bA100\b", 0.00076),
    (r"\bL40S?\b", 0.00053),
    (r"\b6000 ADA\b|\bRTX ?6000\b", 0.00053),
    (r"\bA6000\b", 0.00034),
    (r"\bA40\b", 0.00034),
    (r"\b4090\b", 0.00031),
    (r"\bL4\b", 0.00019),
    (r"\bA5000\b", 0.00019),
    (r"\b3090\b", 0.00019),
    (r"\bA4500\b", 0.00016),
    (r"\bA4000\b", 0.00016),
    (r"\b4000 ADA\b|\bRTX ?4000\b", 0.00016),
)


def flex_price(gpu_type: str | None) -> float | None:
    """The fallback price for a GPU name like 'NVIDIA GeForce RTX 4090', or None if unknown."""
    if not gpu_type:
        return None
    name = re.sub(r"[^A-Z0-9 ]", " ", gpu_type.upper())
    for pattern, price in FLEX_PRICES:
        if re.search(pattern, name):
            return price
    return None


def billed_seconds(execution_time_ms: int | None) -> int:
    if not execution_time_ms or execution_time_ms <= 0:
        return 0
    return math.ceil(execution_time_ms / 1000)


def estimate_usd(execution_time_ms: int | None, gpu_type: str | None, gpu_count: int,
                 price_per_gpu_second: float | None) -> float | None:
    price = price_per_gpu_second if price_per_gpu_second is not None else flex_price(gpu_type)
    if price is None or execution_time_ms is None:
        return None
    return round(price * gpu_count * billed_seconds(execution_time_ms), 8)


def attempts_usd(earlier_usd: float | None, attempt_usd: float | None) -> float | None:
    """The estimate of a job's attempts so far plus this attempt's."""
    if earlier_usd is None or attempt_usd is None:
        return attempt_usd if earlier_usd is None else earlier_usd
    return round(earlier_usd + attempt_usd, 8)
