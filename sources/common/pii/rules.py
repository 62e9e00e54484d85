"""What each classified value becomes: :class:`ActionRules` applies the policy to values as
the API sends them; :class:`TransitionRules` moves values stored under one policy to another
(``solarsync pii apply``). Both answer ``handler(pii)``: a function of the value, or None
when the value stays as it is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sources.common.pii.classify import ADDRESS_PARTS, Pii
from sources.common.pii.settings import Action, Policy
from sources.common.pii.values import (
    is_point,
    mask,
    normalize,
    round_coordinate,
    round_point,
)


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: a handler's answer: remove the value (the key from its object, the element from its list)
DROP = _Drop()

Handler = Callable[[Any], Any]


def _looks_like_place(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c in value for c in " ,")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class ActionRules:
    """The policy's action for each class of value (see ``settings``)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._cache: dict[Pii, Handler | None] = {}

    def kept(self, pii: Pii) -> bool:
        """An address part the policy keeps (``address_keep``)."""
        return (
            pii.cls == "address"
            and pii.kind in ADDRESS_PARTS
            and pii.kind in self.policy.address_keep
        )

    def action(self, pii: Pii) -> Action:
        return Action("keep") if self.kept(pii) else self.policy.actions[pii.cls]

    def handler(self, pii: Pii) -> Handler | None:
        if pii not in self._cache:
            self._cache[pii] = self._handler(pii, self.action(pii))
        return self._cache[pii]

    def _handler(self, pii: Pii, action: Action) -> Handler | None:
        policy = self.policy
        if action.name == "keep":
            return None
        if action.name == "drop":
            return lambda value: DROP
        if pii.cls == "location":
            decimals = action.decimals if action.decimals is not None else 2
            if pii.kind == "point":

                def point(value: Any) -> Any:
                    if isinstance(value, str) and value.strip() and not is_point(value):
                        # a place written out ("12 Elm St, Springfield") is an address; a
                        # word ("solar", "garage": where a meter sits) is not a place. The
                        # address rule only then (it may need the hash key)
                        if _looks_like_place(value):
                            place = self.handler(Pii("address", "address"))
                            return value if place is None else place(value)
                        return value
                    if isinstance(value, str):
                        return round_point(value, decimals) if value.strip() else value
                    return round_coordinate(value, decimals)

                return point
            return lambda value: round_coordinate(value, decimals)
        if action.name == "hash":
            hasher, code = policy.hasher, policy.country_code
            kind = pii.kind

            def hashed(value: Any) -> Any:
                if isinstance(value, bool) or not (_text(value) or isinstance(value, int | float)):
                    return value
                return hasher(normalize(kind, value, code))

            return hashed
        if action.name == "mask":
            code, keep = policy.country_code, policy.address_keep
            kind = {"name": "name", "email": "email", "phone": "phone", "address": "address",
                    "file_name": "file_name"}.get(pii.kind, "text" if pii.cls == "notes" else "other")  # fmt: skip

            def masked(value: Any) -> Any:
                if isinstance(value, bool) or not (_text(value) or isinstance(value, int | float)):
                    return value
                return mask(kind, value, code, keep)

            return masked
        raise AssertionError(f"unknown action {action}")


class TransitionRules:
    """From values stored under ``stored`` (a policy stamp's ``classes``, as written by
    :meth:`Policy.stamp`) to the ``target`` policy.

    * same action: nothing to do;
    * target ``drop``: removed (NULL);
    * stored ``keep`` (the raw value): the target's action, exactly as a run applies it, so
      hashes written now equal the hashes of the same values loaded later;
    * ``round`` to fewer decimals: rounded again;
    * target ``keep``, or an action that cannot be computed from what is stored (a hash back
      to a mask, a hash under another key, more decimals): ``hash``/``mask`` values that cannot
      be kept under the target become NULL, others are left as they are; each such class is
      listed in :attr:`cannot` (a backfill re-reads it from the API).
    """

    def __init__(
        self,
        target: Policy,
        stored: Mapping[str, Any],
        *,
        stored_keep: frozenset[str] | None = None,
        rekeyed: bool = False,
    ) -> None:
        self.target = ActionRules(target)
        self.stored = {k: str(v) for k, v in (stored or {}).items()}
        #: the address parts the stored data kept raw (None: unknown, all of them)
        self.stored_keep = stored_keep
        self.rekeyed = rekeyed
        self.cannot: dict[str, str] = {}
        self._cache: dict[Pii, Handler | None] = {}

    def stored_action(self, pii: Pii) -> str:
        if pii.cls == "address" and pii.kind in ADDRESS_PARTS:
            if self.stored_keep is None or pii.kind in self.stored_keep:
                return "keep"
        return self.stored.get(pii.cls, "keep")

    def handler(self, pii: Pii) -> Handler | None:
        if pii not in self._cache:
            self._cache[pii] = self._handler(pii)
        return self._cache[pii]

    def _handler(self, pii: Pii) -> Handler | None:
        was = self.stored_action(pii)
        action = self.target.action(pii)
        now = str(action)
        if was == now and not (now == "hash" and self.rekeyed):
            return None
        if action.name == "drop":
            return lambda value: DROP
        if was == "keep":
            return self.target.handler(pii)
        if was.startswith("round:") and action.name == "round":
            if int(was.split(":")[1]) > (action.decimals or 0):
                return self.target.handler(pii)
            self.cannot[pii.cls] = f"stored rounded to {was.split(':')[1]} decimals"
            return None
        if action.name == "keep":
            self.cannot[pii.cls] = f"stored as {was}: the raw values are not in the warehouse"
            return None
        # hash <-> mask, a hash under another key, drop -> anything: not computable
        self.cannot[pii.cls] = f"stored as {was}, wanted {now}: cleared"
        return lambda value: DROP


__all__ = ["DROP", "ActionRules", "Handler", "TransitionRules"]
