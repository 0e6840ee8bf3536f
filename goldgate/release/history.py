"""What the ledger says about releases: which digests are verified on PROD, which release an
operator means by `--to`, and whether a promotion or rollback was interrupted part-way.

A release is verified once PROD served it and its smoke cases passed there (a promotion or a
rollback with outcome `promoted` / `rolled_back`). Only verified releases are rollback targets. With a ledger key in
use, only an outcome whose MAC verifies makes a release verified: a forged "promoted" line appended to the ledger
branch would otherwise become the target of the next rollback, the automatic one after a failed promotion included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.release.ledger import (
    KEY_ENV,
    Entry,
    golden_run_named,
    key_from_env,
    last_golden_run,
    last_prod_change,
    read_last_golden_run,
)
from goldgate.release.lock import describe_holder, release_lock_holder

VERIFIED_OUTCOMES = ("promoted", "rolled_back")
_LOCAL_IMAGE = "local/"   # the local image store's references (goldgate.local.image_store.REF_PREFIX)
_HEX = re.compile(r"^(sha256:)?[0-9a-f]{7,64}$")


class UnknownRelease(GoldgateError):
    """`--to` names nothing the ledger knows as a verified release."""


@dataclass(frozen=True)
class VerifiedRelease:
    """A digest PROD served with its smoke cases passing, and when that was last true."""

    image: str
    release_id: str | None
    verified_at: str
    seq: int


@dataclass(frozen=True)
class Interrupted:
    """An intent with no outcome: the command died between recording intent and outcome."""

    kind: str
    intent_seq: int
    image: str
    before: str | None
    reason: str | None = None     # a rollback's: "manual" (the operator's) or why the automatic one ran


def digest_of(image: str) -> str:
    """`sha256:<hex>` of an image ref, or the ref itself when it has no digest."""
    return image.split("@", 1)[1] if "@" in image else image


def on_target(entries: list[Entry], target: str) -> list[Entry]:
    """The entries of `target`'s stacks. The local and the cloud target both name their stacks staging and prod, and
    one state dir may serve both (the README's local release, then `--target cloud` from the same checkout): read as
    one, a cloud promotion made the local stack file look stale, and a local release became the cloud's rollback
    target. An entry that does not say which target it was for is told by its image: only the local target runs a
    local snapshot (`local/worker@sha256:...`), only the cloud one a pushed image."""
    return [e for e in entries if entry_target(e) in (None, target)]


def entry_target(entry: Entry) -> str | None:
    """The target an entry was recorded for; None when it cannot tell (a build, or an entry that names no image)."""
    if entry.kind == "build":  # its `target` is the engine that built it (docker or local), not a stack's target
        return None
    recorded = entry.get("target")
    if isinstance(recorded, str):
        return recorded
    image = entry.get("image")
    if entry.kind in ("promotion", "rollback") and isinstance(image, str):
        return "local" if image.startswith(_LOCAL_IMAGE) else "cloud"
    return None


def release_ids(entries: list[Entry]) -> dict[str, str]:
    """Image ref -> release id, from build entries (the latest build of an image wins)."""
    out: dict[str, str] = {}
    for e in entries:
        if e.kind == "build" and e.get("image") and e.get("release_id"):
            out[e.get("image")] = e.get("release_id")
    return out


def verified_releases(entries: list[Entry], stack: str = "prod") -> list[VerifiedRelease]:
    """Each verified image once, ordered by when it was last verified (oldest first)."""
    ids = release_ids(entries)
    latest: dict[str, VerifiedRelease] = {}
    for e in _verifications(entries, stack):
        if e.authentic:
            image = e.get("prod_image")
            latest.pop(image, None)
            latest[image] = VerifiedRelease(image, ids.get(image), e.ts, e.seq)
    return list(latest.values())


def untrusted_verifications(entries: list[Entry], stack: str = "prod") -> list[Entry]:
    """Outcomes that would verify a release but whose MAC is missing or wrong under the ledger key in use."""
    return [e for e in _verifications(entries, stack) if not e.authentic]


def _verifications(entries: list[Entry], stack: str) -> list[Entry]:
    """The outcomes that say `stack` served an image with its smoke cases passing, authenticated or not."""
    return [e for e in entries if e.kind in ("promotion", "rollback") and e.get("phase") == "outcome"
            and e.get("stack", "prod") == stack and e.get("outcome") in VERIFIED_OUTCOMES and e.get("prod_image")]


def last_verified(entries: list[Entry], exclude: str | None = None, stack: str = "prod") -> VerifiedRelease | None:
    """The most recently verified release other than `exclude` (the candidate or current image), skipping
    any release a rollback took `stack` off since it was last verified: rolling back twice goes further
    back, never forward to the release the first rollback left (`--to` still names it deliberately). A
    rollback that failed before it changed the pin left nothing: what the stack still runs stays a target. One that was
    interrupted left its release whatever pin `reconcile` read: after a lost CI runner that is main's pin, the release
    the rollback was leaving, while the stack may run the one it went to. Under a ledger key only an authenticated
    rollback counts: a line appended without it would skip the newest release."""
    left = {e.get("before"): e.seq for e in entries
            if e.kind == "rollback" and e.get("phase") == "outcome" and e.get("stack", "prod") == stack and e.authentic
            and e.get("before") and e.get("before") != e.get("image")
            and (e.get("after") != e.get("before") or e.get("outcome") == "interrupted")}
    for release in reversed(verified_releases(entries, stack)):
        if release.image != exclude and left.get(release.image, 0) <= release.seq:
            return release
    return None


def resolve(entries: list[Entry], to: str, stack: str = "prod", current: str | None = None, *,
            on: str = "") -> VerifiedRelease:
    """Find the verified release `to` names: a full ref, `sha256:<hex>`, a hex prefix (7+), a release id, or the
    image's tag (`<repo>:<release id>`). `current` (what `stack` runs) is left out of the releases a refusal lists;
    `on` is the `--target` option of the `history` command a refusal names (none on the local target)."""
    to = to.strip()
    verified = verified_releases(entries, stack)
    matches = _named(verified, to)
    if len({m.image for m in matches}) > 1:
        raise UnknownRelease(f"{to!r} matches several verified releases "
                             f"({', '.join(m.image for m in matches)}); give the full digest")
    if not matches:
        ids = release_ids(entries)
        unproven = [VerifiedRelease(e.get("prod_image"), ids.get(e.get("prod_image")), e.ts, e.seq)
                    for e in untrusted_verifications(entries, stack)]
        named = _named(unproven, to)
        if named:
            entry = next(e for e in entries if e.seq == named[-1].seq)
            raise UnknownRelease(f"{to!r} is not a verified release: {entry.mac_problem()}; only a release verified "
                                 f"under the ledger key can be pinned on PROD (see `goldgate history{on}`)")
    if not verified:
        raise UnknownRelease("the ledger holds no verified release yet: nothing to roll back to "
                             "(a release becomes verified when a promotion's smoke cases pass on PROD)")
    if not matches:
        shown = [r for r in verified if r.image != current]
        # A release no build in this ledger named (built in another state dir, or by CI) is its image alone: "- (ref)"
        known = ", ".join(f"{r.release_id} ({r.image})" if r.release_id else r.image for r in reversed(shown[-5:]))
        recent = f" Recent ones: {known}." if known else ""
        raise UnknownRelease(f"{to!r} is not a verified release{_why_not(entries, to)}; only verified releases can "
                             f"be pinned on PROD.{recent} See `goldgate history{on}`.")
    return matches[-1]


_SHORT_HEX = re.compile(r"^(sha256:)?[0-9a-f]{1,6}$")


def _why_not(entries: list[Entry], to: str) -> str:
    """Why `to` names no verified release, when that can be told: a digest prefix too short to name one, or a release
    goldgate built that never passed its smoke cases on PROD."""
    digest = to.rpartition("@")[2] if "@" in to else to
    if _SHORT_HEX.match(digest.lower()):
        return ": too short (give 7+ hex of its digest)"
    built = {rid: image for image, rid in release_ids(entries).items()}
    if to in built or to.rpartition(":")[2] in built and "@" not in to and ":" in to:
        return ": built, never verified on PROD"
    return ""


def _named(releases: list[VerifiedRelease], to: str) -> list[VerifiedRelease]:
    """The releases `to` names: by full ref or release id, else by digest or a prefix of its hex (case-blind: a
    digest copied from a tool that prints it in capitals; the stored ones are lowercase)."""
    matches = [r for r in releases if to in (r.image, r.release_id)]
    # The image's tag, as a build names it (`local/worker:<release id>`): the release of that id in that repository.
    repo, colon, tag = to.rpartition(":")
    if not matches and colon and "@" not in to and "/" not in tag:
        matches = [r for r in releases if r.release_id == tag and r.image.rpartition("@")[0] == repo]
    # `goldgate history` shows each image as repo@sha256:<first 12 hex>: copied from there, it names the image too.
    repo, at, digest = to.rpartition("@")
    if not matches and _HEX.match((digest if at else to).lower()):
        hex_part = (digest if at else to).lower().removeprefix("sha256:")
        matches = [r for r in releases if digest_of(r.image).removeprefix("sha256:").startswith(hex_part)
                   and (not at or r.image.rpartition("@")[0] == repo)]
    return matches


def stale_pin(entries: list[Entry], pinned: str | None, stack: str = "prod") -> Entry | None:
    """The ledger's last change of `stack` when `pinned` (what the stack file pins here) is a pin `stack` had
    before that change: the file is older than the change (a re-run of an earlier CI run checks out its old
    commit). None when `pinned` is what the last change left, may be left by an interrupted change, or is
    unknown to the ledger (a change the ledger missed is no reason to wedge every later one)."""
    # Under a ledger key only authenticated changes count: a forged outcome naming the stale pin would turn the
    # refusal off.
    changes = [e for e in entries
               if e.kind in ("promotion", "rollback") and e.get("stack", "prod") == stack and e.authentic]
    outcomes = [e for e in changes if e.get("phase") == "outcome"]
    if pinned is None or not outcomes:
        return None
    last = outcomes[-1]
    left = last.get("pinned", last.get("after"))
    open_intents = interrupted(entries, stack)
    if left is None or pinned == left or pinned in {i.image for i in open_intents} | {i.before for i in open_intents}:
        return None
    earlier = {e.get(key) for e in changes for key in ("before", "after", "pinned")}
    return last if pinned in earlier else None


def interrupted(entries: list[Entry], stack: str = "prod") -> list[Interrupted]:
    """Intents on `stack` that never got their outcome line. Under a ledger key only authenticated lines count: an
    intent appended without it is no change goldgate began (`reconcile` would close it with an outcome signed under
    the key, which then steers the next rollback), and an outcome appended without it closes no real one."""
    finished = {e.get("intent_seq") for e in entries if e.get("phase") == "outcome" and e.authentic}
    return [Interrupted(e.kind, e.seq, e.get("image"), e.get("before"), e.get("reason"))
            for e in entries
            if e.kind in ("promotion", "rollback") and e.get("phase") == "intent" and e.authentic
            and e.get("stack", "prod") == stack and e.seq not in finished]


def unverified_on_prod(home: Path, stack: str, image: str, verb: str, staging: str = "staging") -> str | None:
    """Why `image`, which the local PROD `stack` serves or is pinned to (`verb`: "serves", "is pinned to"), is no
    release verified there, with the ways out, in a sentence for `goldgate status`; None when a promotion or rollback
    recorded its smoke cases passing there with it. A release PROD took without that (a pin.json edited by hand, a
    ledger that lost its entries, a promotion cut short before its smoke run judged it) is one no golden run may have
    passed anywhere, and nothing else says so. Read from the ledger's end (`last_prod_change`): `status` runs often."""
    said = f"{stack} {verb} {image}"
    try:
        # Read as the SMOKE FAILED line reads it, which says nothing when the ledger cannot be read: said here.
        run = read_last_golden_run(home, stack, image)
        verified = last_prod_change(home, stack, verifying=image)
        last = last_prod_change(home, stack)
        # A smoke run of it that failed there before a promotion of it, or a rollback to it, that was cut short
        # (`promote --retry-rejected`, or the `rollback --to` it that SMOKE FAILED offers once PROD's cause is fixed,
        # killed before its smoke run): `status` leaves its SMOKE FAILED line out for the newest change, said here. It
        # speaks even of a release verified there before that failure: its newest verdict there is the failure.
        failed = run if run is not None and run.get("passed") is not True \
            and change_cut_short(last, image, after=run.get("seq")) else None
        if verified is not None and (failed is None or _seq(failed) < _seq(verified)):
            return None
        newest = last_prod_change(home, stack, verifying="")
        before = last.get("before") if last is not None else None
        if isinstance(before, str) and last_prod_change(home, stack, verifying=before) is None:
            before = None   # not a verified release: `rollback` goes to the newest one instead
        # Under a ledger key, one that verified it without a MAC that verifies (recorded before the key was set)
        unsigned = last_prod_change(home, stack, verifying=image, authentic=False) if key_from_env() else None
    except (OSError, GoldgateError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return (f"{said}, and the release ledger ({Path(home) / 'ledger.jsonl'}) cannot be read ({why[:200]}): "
                f"nothing shows that a golden run passed for it and its smoke cases passed on {stack}")
    back = (f"`goldgate rollback` puts back the last verified release ({newest.get('prod_image')}, ledger "
            f"#{newest.get('seq')}; `goldgate history`)" if newest is not None else None)
    if last is not None and last.get("kind") == "rollback" and failed is not None:
        return _rollback_cut_short(home, stack, said, last, failed, verified)
    if last is not None and last.get("kind") == "promotion" and change_cut_short(last, image):
        holder = release_lock_holder(home) if last.get("phase") == "intent" else None
        if holder is not None and str(holder.get("purpose")).startswith("rollback"):   # closing it, as it starts
            return (f"{said}, which no smoke run judged there: its promotion (ledger #{last.get('seq')}) did not "
                    f"finish, and a rollback is under way ({describe_holder(holder)}): `goldgate status {stack}` "
                    "again once it ends")
        if holder is not None and holder.get("kind") != "golden":
            return (f"{said}, which no smoke run has judged there yet: its promotion (ledger #{last.get('seq')}) is "
                    f"under way ({describe_holder(holder)}); its smoke run decides whether {stack} keeps it: "
                    "`goldgate history` shows how it ended")
        retry = " --retry-rejected" if last.get("retry_rejected") is True else ""
        seq = last.get("intent_seq", last.get("seq"))
        undo = (f"`goldgate rollback` puts back {before}" if before else back) if before or back else None
        what = "smoke run" if failed is None else golden_run_named(failed)
        judged = (f", whose {what} there failed (ledger #{_seq(failed)}) after a {verified.get('kind')} verified it "
                  f"there (ledger #{_seq(verified)})" if verified is not None and failed is not None else
                  ", which no promotion verified there")
        earlier = (f"; its {what} there before that promotion failed (ledger #{_seq(failed)})"
                   if failed is not None and verified is None else "")
        return (f"{said}{judged}: its promotion (ledger #{seq}) did not finish{_smoke_since(home, stack, image, seq)}"
                f"{earlier}; `goldgate promote{retry}` tries it again (and smokes it)" + (
                    f", or {undo} (not a verdict on it)" if undo else
                    f"; the ledger holds no verified release of {stack} to roll back to"))
    gate = (f"take it through the gate: `goldgate deploy {staging} --image {image}`, `goldgate golden {staging}`, "
            f"then `goldgate promote --image {image}`")
    if unsigned is not None and (last is None or _seq(last) < _seq(unsigned)):
        # "No promotion put it there" was false: one did, and the key in use does not vouch for its line.
        mac = unsigned.get("mac")
        problem = (f"carries no MAC: it was recorded without {KEY_ENV} (before the key was set), or not by goldgate"
                   if not isinstance(mac, str) else
                   f"has a MAC that does not verify with {KEY_ENV}: it was forged, or recorded under another key")
        return (f"{said}, which no promotion or rollback verified there under the ledger key: its "
                f"{unsigned.get('kind')} (ledger #{unsigned.get('seq')}) verified it there, but {problem}; under the "
                "key only a release verified with it counts (docs/RUNBOOK.md, Rollback); "
                + (f"{back}, or {gate} with the key set" if back else
                   f"the ledger holds no release of {stack} verified under the key to roll back to: {gate} with the "
                   "key set"))
    if last is not None and last.get("image") == image and last.get("phase") == "outcome":
        how = f"its {last.get('kind')} (ledger #{last.get('seq')}) ended {str(last.get('outcome')).replace('_', ' ')}"
    else:
        how = ("no promotion or rollback in the ledger put it there (it was pinned outside goldgate, its pin.json "
               "edited by hand, or the ledger lost its entries)")
    return (f"{said}, which no promotion or rollback verified there: {how}, so nothing shows a golden run on "
            f"{staging} passed for it, nor its smoke cases on {stack}; "
            + (f"{back}, or {gate}" if back else f"the ledger holds no verified release of {stack} to roll back to: "
                                                  f"{gate}"))


def _rollback_cut_short(home: Path, stack: str, said: str, last: Mapping[str, Any], failed: Mapping[str, Any],
                        verified: Mapping[str, Any] | None) -> str:
    """`unverified_on_prod`'s sentence for a rollback to the image `stack` serves (`last`, its intent or its outcome
    closed as interrupted) that did not finish, begun after that image's golden run there `failed`: the rollback the
    SMOKE FAILED line offers once the cause on PROD is fixed (`rollback --to` it), cut short before its smoke run."""
    seq = last.get("intent_seq", last.get("seq"))
    what = golden_run_named(failed)
    judged = (f", whose {what} there failed (ledger #{_seq(failed)}) after a {verified.get('kind')} verified it there "
              f"(ledger #{_seq(verified)})" if verified is not None else
              f", whose {what} there failed (ledger #{_seq(failed)})")
    holder = release_lock_holder(home) if last.get("phase") == "intent" else None
    if holder is not None and holder.get("kind") != "golden":
        return (f"{said}{judged}: a rollback to it (ledger #{seq}) is under way ({describe_holder(holder)}); its smoke "
                f"run decides whether {stack} keeps it: `goldgate status {stack}` again once it ends")
    # `rollback` without --to finishes an interrupted rollback: it goes on to the release that one was rolling to.
    return (f"{said}{judged}: the rollback to it (ledger #{seq}) did not finish, cut short before any smoke run judged "
            f"it; `goldgate rollback` finishes it (and smokes it), or `goldgate rollback --to <release>` pins another "
            "verified release (`goldgate history`)")


def change_cut_short(last: Mapping[str, Any] | None, image: str, *, after: Any = None) -> bool:
    """Whether `last`, a stack's last promotion or rollback line in the ledger (`last_prod_change`), is a promotion of
    `image`, or a rollback to it, that did not finish (its intent still open: cut short, or under way; or closed as
    interrupted), and with `after` (a ledger seq), one that began after that entry."""
    if last is None or last.get("kind") not in ("promotion", "rollback") or last.get("image") != image or not (
            last.get("phase") == "intent" or last.get("outcome") == "interrupted"):
        return False
    began = last.get("seq") if last.get("phase") == "intent" else last.get("intent_seq")
    return after is None or (isinstance(began, int) and isinstance(after, int) and began > after)


def pin_accounted_for(last: Mapping[str, Any] | None, pinned: str) -> bool:
    """Whether `last`, a stack's last promotion or rollback line in the ledger (an intent or an outcome, as
    `last_prod_change` reads it), accounts for the pin `pinned`: the image of a change not finished (open, or closed
    as interrupted), or what a finished one pinned or left. A pin it does not account for was set outside goldgate
    (its pin.json edited by hand, or a ledger that lost its entries)."""
    if last is None:
        return False
    cut_short = last.get("phase") == "intent" or last.get("outcome") == "interrupted"
    return pinned in ((last.get("image") if cut_short else None), last.get("pinned"), last.get("after"))


def _seq(line: Mapping[str, Any]) -> int:
    seq = line.get("seq")
    return seq if isinstance(seq, int) else 0


def _smoke_since(home: Path, stack: str, image: str, intent_seq: Any) -> str:
    """", though its smoke run passed (ledger #n)" when one did after the promotion's intent (#`intent_seq`): cut
    short after it."""
    run = last_golden_run(home, stack, image, passed=True)
    seq = run.get("seq") if run is not None else None
    after = isinstance(seq, int) and isinstance(intent_seq, int) and seq > intent_seq
    return f", though its smoke run passed (ledger #{seq})" if after else ", cut short before any smoke run judged it"
