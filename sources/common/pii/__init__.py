"""Personal data: what solarsync does with homeowners' names, phones, emails, addresses,
coordinates, notes and files before anything is written (docs/pii.md).

- ``settings``: ``[solarsync.pii]`` (a dlt configspec) and the validated :class:`Policy`;
- ``classify``: the classes, each source's :class:`Declared` columns, the name patterns;
- ``values``: normalizing, keyed hashing, masking, rounding, address parts;
- ``rules``: what a classified value becomes (:class:`ActionRules`, :class:`TransitionRules`);
- ``walk``: a row and everything nested in it through the rules;
- ``attachments``: the categories of lead files and which are downloaded;
- ``redactor``: the :class:`Redactor` each source calls on its rows, and the policy stamp in
  dlt state that keeps stored data and configuration in step.
"""

from sources.common.pii.attachments import CATEGORIES, CATEGORY_KEY, AttachmentRules
from sources.common.pii.classify import (
    CLASSES,
    IDENTIFIER,
    SAFE,
    Classifier,
    Declared,
    Pii,
    path_of,
    snake,
)
from sources.common.pii.redactor import (
    STATE_KEY,
    PolicyChangedError,
    Redactor,
    differences,
    legacy_stamp,
)
from sources.common.pii.rules import DROP, ActionRules, TransitionRules
from sources.common.pii.settings import (
    ACTIONS,
    DEFAULTS,
    Action,
    PiiSettings,
    Policy,
    describe,
    policy,
    resolve_settings,
)
from sources.common.pii.values import Hasher, is_hash, normalize
from sources.common.pii.walk import Walker

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "CATEGORY_KEY",
    "CLASSES",
    "DEFAULTS",
    "DROP",
    "IDENTIFIER",
    "SAFE",
    "STATE_KEY",
    "Action",
    "ActionRules",
    "AttachmentRules",
    "Classifier",
    "Declared",
    "Hasher",
    "Pii",
    "PiiSettings",
    "Policy",
    "PolicyChangedError",
    "Redactor",
    "TransitionRules",
    "Walker",
    "describe",
    "differences",
    "is_hash",
    "legacy_stamp",
    "normalize",
    "path_of",
    "policy",
    "resolve_settings",
    "snake",
]
