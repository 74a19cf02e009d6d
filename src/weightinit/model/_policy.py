"""Policies: an ordered list of small rules, first match wins. The presets are such lists
(`_presets`); data-driven policies (LSUV) are registered as calibrators."""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import InitError, check_choice, did_you_mean, failure, first_line
from ..schemes import Spec
from ._info import ParamInfo
from ._roles import ROLES

SpecOrFactory = Spec | None | Callable[[ParamInfo], "Spec | None"]


def _glob(pattern: str | Sequence[str] | None, value: str) -> bool:
    if pattern is None:
        return True
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclasses.dataclass(frozen=True)
class Rule:
    """Give `spec` to every parameter that matches all the given criteria.

    Args:
        spec: a `Spec`; ``None`` to keep the parameter as it is; or a function of the
            `ParamInfo` returning either (so a rule can depend on fans or the activation).
        module: a module class (or tuple of classes), or a class-name glob (``"*Norm"``).
        name: a glob on the qualified parameter name or its aliases (``"*.c_proj.weight"``).
        role: a glob (or list of globs) on the role (``"*.bias"``, ``"norm.*"``).
        activation: a glob on the feeding activation's label (``"relu"``, ``"leaky_relu*"``).
        label: what the plan's rule column says (default: the criteria).
        when: a predicate on the `ParamInfo` (``lambda info: info.router``), for what the
            other criteria cannot say.

    Example:
        >>> wi.Rule(wi.Zeros(), role="*.bias")
    """

    spec: SpecOrFactory
    module: type | tuple[type, ...] | str | None = None
    name: str | Sequence[str] | None = None
    role: str | Sequence[str] | None = None
    activation: str | Sequence[str] | None = None
    label: str | None = None
    when: Callable[[ParamInfo], bool] | None = None

    def __post_init__(self) -> None:
        if self.when is not None and not callable(self.when):
            raise InitError(
                f"`when` of a Rule must be a function of the ParamInfo returning a bool, got "
                f"{type(self.when).__name__} {self.when!r}."
            )
        if self.spec is not None and not isinstance(self.spec, Spec) and not callable(
                self.spec):
            raise InitError(
                f"`spec` of a Rule must be a weightinit Spec, None (keep the parameter) or a "
                f"function of the ParamInfo, got {type(self.spec).__name__} {self.spec!r}."
            )
        if isinstance(self.module, type) or (isinstance(self.module, tuple) and all(
                isinstance(m, type) for m in self.module)) or self.module is None:
            pass
        elif not isinstance(self.module, str):
            raise InitError(
                f"`module` of a Rule must be a class, a tuple of classes or a class-name glob, "
                f"got {self.module!r}."
            )
        for field in ("name", "role", "activation"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str) and not (
                    isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
                raise InitError(f"`{field}` of a Rule must be a glob string, got {value!r}.")
        roles = [self.role] if isinstance(self.role, str) else list(self.role or [])
        for role in roles:
            if not any(c in role for c in "*?[") and role not in ROLES:
                raise InitError(
                    f"`role` {role!r} of a Rule is not a role.{did_you_mean(role, ROLES)}"
                    f" Roles: {', '.join(ROLES)} (globs like '*.bias' work too)."
                )
        if isinstance(self.spec, type):
            raise InitError(
                f"`spec` of a Rule must be a Spec instance, got the class {self.spec.__name__}; "
                f"write {self.spec.__name__}()."
            )

    def describe(self) -> str:
        """The rule's label, or its criteria and spec as ``Rule(role='linear.weight', ...)``:
        what a plan row's `rule` shows."""
        if self.label is not None:
            return self.label
        parts = []
        for field in ("module", "name", "role", "activation", "when"):
            value = getattr(self, field)
            if field == "when" and value is not None:
                parts.append(f"when={getattr(value, '__name__', 'predicate')}")
            elif value is not None:
                shown = value.__name__ if isinstance(value, type) else value
                parts.append(f"{field}={shown!r}")
        return f"Rule({', '.join(parts) or 'all'})"

    def matches(self, info: ParamInfo) -> bool:
        """Whether every criterion given (module, name, role, activation, when) holds for
        the parameter `info`."""
        if self.module is not None:
            if isinstance(self.module, str):
                if not fnmatch.fnmatchcase(info.layer, self.module):
                    return False
            elif info.module_type is None or not issubclass(info.module_type, self.module):
                return False
        if self.name is not None and not any(_glob(self.name, n)
                                             for n in (info.name, *info.aliases)):
            return False
        if not (_glob(self.role, info.role) and _glob(self.activation, info.activation)):
            return False
        return self.when is None or bool(self.when(info))

    def resolve(self, info: ParamInfo) -> Spec | None:
        """The spec for the parameter `info`: the rule's spec, or what its function returns
        for `info` (None: keep it); InitError for a function returning anything else."""
        if self.spec is None or isinstance(self.spec, Spec):
            return self.spec
        result = self.spec(info)
        if result is not None and not isinstance(result, Spec):
            raise InitError(
                f"The rule {self.describe()} returned {result!r} for {info.name!r}; a rule's "
                "function must return a weightinit Spec or None."
            )
        return result


class Policy:
    """An ordered list of `Rule`s; for each parameter the first rule that matches decides.

    Args:
        rules: the rules, highest precedence first. A `Policy` in the list contributes its
            rules in place, so ``Policy([my_rule, *Policy.preset("auto").rules])`` and
            ``Policy([my_rule, Policy.preset("auto")])`` are the same.
        strict: raise when a parameter matches no rule, or a rule matches no parameter.
            Otherwise unmatched parameters are kept as they are and flagged in the plan.
        name: shown in the plan.
        notes: what every plan this policy makes says about it (the presets' scale, say).
    """

    def __init__(self, rules: Sequence[Rule | Policy], *, strict: bool = False,
                 name: str = "custom", notes: Sequence[str] = ()) -> None:
        if isinstance(rules, (Rule, Policy)) or not isinstance(rules, Sequence):
            raise InitError(
                f"`rules` must be a list of wi.Rule, got {type(rules).__name__}; wrap a single "
                "rule in a list: wi.Policy([rule])."
            )
        flat: list[Rule] = []
        own: list[Rule] = []  # the rules listed here, not those of a nested policy
        nested_notes: list[str] = []
        for rule in rules:
            if isinstance(rule, Policy):
                flat.extend(rule.rules)
                nested_notes.extend(rule.notes)
            elif isinstance(rule, Rule):
                flat.append(rule)
                own.append(rule)
            else:
                raise InitError(
                    f"Every item of `rules` must be a wi.Rule (or a wi.Policy), got "
                    f"{type(rule).__name__} {rule!r}."
                )
        self.rules: tuple[Rule, ...] = tuple(flat)
        self._own = tuple(own)
        self.strict = bool(strict)
        self.name = name
        if isinstance(notes, str) or not all(isinstance(n, str) for n in notes):
            raise InitError(f"`notes` must be a list of str, got {notes!r:.80}.")
        self.notes: tuple[str, ...] = tuple(dict.fromkeys((*notes, *nested_notes)))

    def __repr__(self) -> str:
        return f"Policy({len(self.rules)} rules, name={self.name!r}, strict={self.strict})"

    def decide(self, infos: Sequence[ParamInfo]) -> list[tuple[Spec | None, str]]:
        """(spec, rule label) for each parameter; (None, "unmatched") when none matches."""
        used = [False] * len(self.rules)
        out: list[tuple[Spec | None, str]] = []
        for info in infos:
            for i, rule in enumerate(self.rules):
                if rule.matches(info):
                    used[i] = True
                    try:
                        spec = rule.resolve(info)
                    except InitError as exc:
                        raise InitError(
                            f"{exc} (rule {rule.describe()}, parameter {info.name!r} of shape "
                            f"{info.shape})"
                        ) from None
                    except Exception as exc:
                        raise failure(f"The rule {rule.describe()} raised {first_line(exc)} for "
                                      f"parameter {info.name!r} of shape {info.shape}") from exc
                    out.append((spec, f"{self.name}: {rule.describe()}"))
                    break
            else:
                if self.strict:
                    raise InitError(
                        f"No rule of policy {self.name!r} matches parameter {info.name!r} "
                        f"(shape {info.shape}, role {info.role!r}, layer {info.layer}, "
                        f"activation {info.activation!r}); add a rule for it, or pass "
                        "strict=False to keep it as it is."
                    )
                out.append((None, "unmatched"))
        if self.strict:  # a nested preset's catch-alls may go unused; the rules given here not
            unused = [r.describe() for r, u in zip(self.rules, used, strict=True)
                      if not u and any(r is o for o in self._own)]
            if unused:
                raise InitError(
                    f"Rules of policy {self.name!r} matched no parameter: {', '.join(unused)}. "
                    "Fix their criteria (a typo in a name glob?), or pass strict=False."
                )
        return out

    @classmethod
    def preset(cls, name: str, **options: Any) -> Policy:
        """A named policy: ``"auto"`` (weightinit's default), ``"torch"``, ``"keras"``,
        ``"flax"``, ``"gpt2"`` or ``"fixup"``, each reproducing what its namesake does (the
        functions in ``weightinit.model._presets`` say exactly what). Options:
        ``auto(residual="scale"|"zero"|"none")``, ``gpt2(std=0.02)``."""
        from ._presets import PRESETS

        check_choice("policy", name, tuple(PRESETS))
        factory = PRESETS[name]
        valid = list(inspect.signature(factory).parameters)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            if not valid:
                raise InitError(f"Bad options {unknown}: policy {name!r} takes no options.")
            raise InitError(
                f"Bad options {unknown} for policy {name!r}.{did_you_mean(unknown[0], valid)} "
                f"Its options: {', '.join(valid)}."
            )
        return factory(**options)


CALIBRATORS: dict[str, Callable[..., Any]] = {}
"""Data-driven policies by name: ``init_model(model, name, example_inputs=batch, seed=s)`` calls
``CALIBRATORS[name](model, batch, seed=s)`` and returns the InitPlan it gives. The layers
above register theirs (``"lsuv"``) where weightinit's public API is assembled."""


def register_calibrator(name: str, calibrate: Callable[..., Any]) -> None:
    """Make ``init_model(model, name, example_inputs=batch)`` call `calibrate`."""
    CALIBRATORS[name] = calibrate
