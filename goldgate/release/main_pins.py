"""What a CI run that checked out an older commit may take from main, and give back: whether a PROD job may act on
main's PROD stack file (`check_prod_file`), and which of this run's pins its pin commit moves on main's head
(`pins_onto_main`). The workflows call them through `goldgate check-prod-file` and `goldgate pins-onto-main`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate import spec as specs
from goldgate.errors import GoldgateError, SpecError
from goldgate.release.history import on_target
from goldgate.release.ledger import Entry
from goldgate.release.report import ReportError, read_bounded

PROD, STAGING = "prod", "staging"
STACKS = (STAGING, PROD)
ADVICE = "nothing was changed: start a new run from main"
# `Ledger.require_key_if_signed`: called with what is about to be decided just before a decision reads a ledger line,
# so that a signed ledger read without its key refuses (unkeyed, a line appended by hand would be trusted).
RequireKey = Callable[[str], None]


def _no_key_needed(_doing: str) -> None:
    return None


def _cloud_entries(entries: Sequence[Entry]) -> list[Entry]:
    """The ledger entries these decisions may read: the cloud target's, since the files they read and write are the
    Pulumi stack files. One state dir may serve both targets (the README's local release, then `--target cloud`), and
    the two name their stacks alike: read as one, a local deploy decided STAGING's pin on main. Every build stays: its
    `target` is the engine that built it (docker or local), not a stack's target, and a build is looked up by its
    image, which a local snapshot never shares with a pushed one."""
    cloud = {id(e) for e in on_target(list(entries), "cloud")}
    return [e for e in entries if e.kind == "build" or id(e) in cloud]


class ProdFileNotMains(GoldgateError):
    """This checkout's PROD stack file is not main's, and main's may not be taken instead; nothing was changed."""


class PinNotMovable(GoldgateError):
    """Main's stack file does not hold its pin on one line that this run's pin can replace."""


@dataclass(frozen=True)
class StackFile:
    """A Pulumi stack file as read: its exact text and its pin (`goldgate:spec.image`, None when not a string)."""

    path: Path
    text: str
    pin: str | None


def read_stack_file(path: Path) -> StackFile:
    doc = specs.read_yaml(path)
    config = doc.get("config") if isinstance(doc, Mapping) else None
    spec = config.get("goldgate:spec") if isinstance(config, Mapping) else None
    if not isinstance(spec, Mapping):
        raise SpecError(f"{path}: expected `config: goldgate:spec: {{...}}`; is it a Pulumi stack file of goldgate?")
    image = spec.get("image")
    # Bytes, not read_text: a file with CRLF line ends is written back with them, so the pin commit changes one line.
    return StackFile(path, path.read_bytes().decode("utf-8"), image if isinstance(image, str) and image else None)


def _lf(text: str) -> str:
    # Line ends are not config: a checkout may have other ones than `git show` prints (core.autocrlf, eol attributes).
    return text.replace("\r\n", "\n")


@dataclass(frozen=True)
class ProdFileCheck:
    """Main's PROD stack file may be acted on: it is this checkout's, or it moved PROD's pin from `ours` to `mains`
    through the promotion at ledger `promotion_seq`, before the golden run at `golden_seq`."""

    path: Path
    ours: str | None
    mains: str | None
    promotion_seq: int | None = None
    golden_seq: int | None = None

    def message(self) -> str:
        if self.promotion_seq is None:
            return f"{self.path} is main's"
        return (f"PROD's pin on main moved from {self.ours} to {self.mains} since this run's commit (ledger "
                f"#{self.promotion_seq}, before this run's golden run #{self.golden_seq}): promoting with main's "
                f"{self.path}")

    def to_dict(self) -> dict[str, Any]:
        return {"stack_file": str(self.path), "ours": self.ours, "mains": self.mains, "taken_from_main": (
            self.promotion_seq is not None), "promotion_seq": self.promotion_seq, "golden_seq": self.golden_seq,
            "message": self.message()}


def check_prod_file(ours: StackFile, mains: StackFile, entries: Sequence[Entry], report: Path | None,
                    require_key: RequireKey = _no_key_needed) -> ProdFileCheck:
    """Whether a PROD job whose checkout holds `ours` may go on with main's PROD stack file `mains`.

    Only a promotion (`report`: the golden report that qualified its digest) takes main's file when it differs,
    and only when the two differ in PROD's pin alone and the ledger shows a promotion set main's pin, to a digest
    built before this run's, before that golden run: of two pushes close together, the first one's release came
    before the second one was tested, so promoting the second undoes nothing. Anything else would undo a change on
    main, and is refused. With a ledger key in use, only authenticated entries explain main's pin: whoever can write
    the ledger file could otherwise add the promotion that makes this run take main's file. `require_key` is called
    before the first ledger line is relied on: a decision that reads none (the files are equal, or differ where no
    ledger line could explain it) needs no key. Only the cloud target's entries count (`_cloud_entries`)."""
    entries = _cloud_entries(entries)
    if _lf(ours.text) == _lf(mains.text):
        return ProdFileCheck(ours.path, ours.pin, mains.pin)
    if report is None:
        raise ProdFileNotMains(f"{ours.path} of this run's commit is not main's: PROD's pin or config changed since "
                               f"this run's commit (a re-run, or a change that landed first?); {ADVICE}")
    if ours.pin is None or mains.pin is None or _lf(mains.text).replace(mains.pin, ours.pin) != _lf(ours.text):
        raise ProdFileNotMains(f"{ours.path} on main differs from this run's commit in more than PROD's pin: PROD's "
                               f"config changed since this run's commit; {ADVICE}")
    try:
        # Bounded, and never waiting for a pipe's writer: `--report` is what the job was given, whatever it is.
        sha256 = hashlib.sha256(read_bounded(report)).hexdigest()
    except OSError as exc:
        raise ProdFileNotMains(f"{report}: no golden report to tell when this run's digest was qualified "
                               f"({exc.strerror or exc}); {ADVICE}") from None
    except ReportError as exc:
        raise ProdFileNotMains(f"{exc}; {ADVICE}") from None
    require_key("take main's PROD stack file")
    trusted = [e for e in entries if e.authentic]
    golden = next((e for e in reversed(trusted) if e.kind == "golden" and e.get("report_sha256") == sha256), None)
    if golden is None:
        _refuse_untrusted(e for e in entries if e.kind == "golden" and e.get("report_sha256") == sha256)
        raise ProdFileNotMains(f"no golden run in the ledger wrote {report}: cannot tell whether PROD's pin on "
                               f"main ({mains.pin}) was set before this run's digest was qualified; {ADVICE}")
    changes = [e for e in entries if e.kind in ("promotion", "rollback") and e.get("stack", PROD) == PROD
               and e.get("phase") in ("intent", "outcome")]
    # Every later change counts, authenticated or not: it can only stop the promotion.
    later = [e for e in changes if e.seq > golden.seq]
    if later:
        raise ProdFileNotMains(f"PROD changed after the golden run that qualified this run's digest (ledger "
                               f"#{golden.seq}): {later[-1].kind} ledger #{later[-1].seq} came later, and promoting "
                               f"now would undo it; {ADVICE}")
    outcomes = [e for e in changes if e.get("phase") == "outcome" and e.authentic]
    last = outcomes[-1] if outcomes else None
    left = last.get("pinned", last.get("after")) if last else None
    if last is None or left != mains.pin:
        _refuse_untrusted(e for e in changes if e.get("phase") == "outcome" and e.seq > (last.seq if last else 0))
        raise ProdFileNotMains(f"main pins {mains.pin} on PROD, but PROD's last recorded change left {left}: the "
                               f"ledger does not explain main's pin; {ADVICE}")
    # Only a release's pin is taken: a rollback since this run's commit was an operator's verdict on what this
    # commit's code may contain, and a run pushed before it must not promote past it unasked.
    if last.kind != "promotion" or last.get("outcome") != "promoted":
        raise ProdFileNotMains(f"main's PROD pin {mains.pin} was set by {last.kind} ledger #{last.seq} (outcome "
                               f"{last.get('outcome')}), not by a release that landed after this run's commit; "
                               f"{ADVICE}")
    _check_built_before(mains.pin, golden.get("image"), trusted, entries)
    return ProdFileCheck(ours.path, ours.pin, mains.pin, promotion_seq=last.seq, golden_seq=golden.seq)


def _refuse_untrusted(candidates: Iterable[Entry]) -> None:
    """Name the last of `candidates` that the ledger key does not authenticate: it is why the check found none."""
    untrusted = [e for e in candidates if not e.authentic]
    if untrusted:
        raise ProdFileNotMains(f"{untrusted[-1].mac_problem()}; only entries recorded under the ledger key may let "
                               f"this run take main's PROD file; {ADVICE}")


def _check_built_before(mains_pin: str, image: Any, entries: Sequence[Entry], every: Sequence[Entry] = ()) -> None:
    """Main's pin must be an earlier build than this run's digest. A re-run of an older run ("Re-run failed jobs")
    qualifies its older build after a newer release, which the ledger order of golden runs and promotions cannot
    tell from the second of two close pushes; the order the digests were first built in can."""
    first_built: dict[Any, Entry] = {}
    for e in entries:
        if e.kind == "build":
            first_built.setdefault(e.get("image"), e)
    for pin in (mains_pin, image):
        if pin not in first_built:
            # A build recorded without the ledger key (a build job the key does not reach) is named as such.
            _refuse_untrusted(e for e in every if e.kind == "build" and e.get("image") == pin)
            raise ProdFileNotMains(f"the ledger records no build of {pin}: cannot tell whether main's PROD pin "
                                   f"{mains_pin} is an older release than this run's digest {image}; {ADVICE}")
    theirs, ours = first_built[mains_pin], first_built[image]
    if theirs.seq > ours.seq:
        raise ProdFileNotMains(f"main's PROD pin {mains_pin} was built after this run's digest {image} (ledger "
                               f"#{theirs.seq}, after #{ours.seq}): promoting this run's digest would undo that newer "
                               f"release (a re-run of an earlier run?); {ADVICE}")


@dataclass(frozen=True)
class PinMove:
    """Main's stack file for `stack` with its pin moved from `before` to `after` (`text`, to write at `path`)."""

    stack: str
    path: Path
    before: str
    after: str
    text: str


@dataclass(frozen=True)
class KeptPin:
    """Main keeps its STAGING pin `kept`: this run's `ours` is not what STAGING's last deploy left (`runs`)."""

    stack: str
    kept: str | None
    ours: str | None
    runs: str | None

    def message(self) -> str:
        return (f"stacks/Pulumi.{self.stack}.yaml on main keeps {self.kept}: this run's STAGING pin {self.ours} is "
                f"not what STAGING's last deploy in the ledger left ({self.runs})")


@dataclass(frozen=True)
class PinsOntoMain:
    moves: tuple[PinMove, ...]
    kept: tuple[KeptPin, ...]
    warnings: tuple[str, ...] = ()   # ledger entries left out: the ledger key does not authenticate them

    def to_dict(self) -> dict[str, Any]:
        return {"moved": [{"stack": m.stack, "stack_file": str(m.path), "before": m.before, "after": m.after}
                          for m in self.moves],
                "kept": [{"stack": k.stack, "kept": k.kept, "ours": k.ours, "stack_runs": k.runs, "message":
                          k.message()} for k in self.kept],
                "warnings": list(self.warnings)}


def pins_onto_main(ours: Mapping[str, StackFile], mains: Mapping[str, StackFile],
                   entries: Sequence[Entry], require_key: RequireKey = _no_key_needed) -> PinsOntoMain:
    """The pin commit's changes: the pin of each stack in this run's files (`ours`: the stacks the run changed),
    written over main's pin in main's files (`mains`), nothing else of them. This run's commit may be behind main,
    and its other lines older.

    STAGING's pin moves only when STAGING's last deploy in the ledger left it: a re-run's STAGING pin may be older
    than a later run's deploy, and main records what STAGING runs. With a ledger key in use, only
    authenticated deploys count: whoever can write the ledger file could otherwise choose STAGING's pin on
    main. A later deploy the key does not authenticate is named in a warning. `require_key` is called before the
    ledger decides STAGING's pin (PROD's move reads no ledger line). Only the cloud target's deploys count
    (`_cloud_entries`): a local deploy to the local STAGING stack says nothing of what the cloud's runs."""
    deploys = [e for e in _cloud_entries(entries) if e.kind == "deploy" and e.get("stack") == STAGING]
    trusted = [e for e in deploys if e.authentic]
    runs = trusted[-1].get("after") if trusted else None
    moves, kept, warnings = [], [], []
    for stack, new in ours.items():
        main = mains[stack]
        if new.pin == main.pin:
            continue
        if stack == STAGING:
            require_key("move STAGING's pin on main")
        if stack == STAGING and deploys and not deploys[-1].authentic:
            decided = f"ledger #{trusted[-1].seq}, which left {runs}" if trusted else "there is none"
            warnings.append(f"{deploys[-1].mac_problem()}; STAGING's pin on main follows its last deploy "
                            f"recorded under the ledger key instead ({decided})")
        if stack == STAGING and runs != new.pin:
            kept.append(KeptPin(stack, main.pin, new.pin, runs))
            continue
        if new.pin is None or main.pin is None or main.text.count(main.pin) != 1:
            raise PinNotMovable(f"stacks/Pulumi.{stack}.yaml on main: cannot move main's {stack} pin {main.pin!r} to "
                                f"{new.pin!r} (not one pinned line); {stack} runs {new.pin!r}: pin it on main by hand")
        moves.append(PinMove(stack, main.path, main.pin, new.pin, main.text.replace(main.pin, new.pin)))
    return PinsOntoMain(tuple(moves), tuple(kept), tuple(warnings))
