"""The personal-data policy on its own (docs/pii.md): settings and their errors, normalizing
and keyed hashing, masking, classification by declaration and by name, nested values, files.
End to end (every destination, every byte): tests/pipelines/test_pii.py."""

from __future__ import annotations

import logging

import pytest

from sources.common import ConfigurationError
from sources.common.pii import (
    Declared,
    Hasher,
    PiiSettings,
    Policy,
    Redactor,
    is_hash,
    normalize,
    policy,
)
from sources.common.pii.values import mask

KEY = "unit-test-key-0123456789"


def make(**settings) -> Policy:
    return Policy(PiiSettings(hash_key=KEY, **settings))


DECLARED = Declared(
    "src",
    tables={"leads": {"name": "contact.name", "email": "contact.email", "phone": "contact.phone",
                      "address": "address", "notes": "notes", "lat": "location.lat"}},
    safe={"leads": ("status",)},
    attachments={"leads": "attachments"},
)  # fmt: skip


def lead() -> dict:
    return {
        "id": "ld_1",
        "user_id": "us_9",
        "name": "Zoë  Müller",
        "email": " Zoe.Mueller@Example.COM ",
        "phone": "(555) 123-4567",
        "address": "12 Elm St, Apt 4B, Springfield, IL 62704",
        "notes": "call after 6, gate 4411",
        "lat": 39.7817213,
        "status": "hot",
        "homeowner": {"fullName": "Jo Bloggs", "contact": {"cell": "555 987 6543"}},
        "extraField": "jo.bloggs@example.org",
        "attachments": [{"id": "f1", "fileName": "Bloggs drivers license.jpg",
                         "mimeType": "image/jpeg"},
                        {"id": "f2", "fileName": "power bill.pdf", "mimeType": "application/pdf"}],
    }  # fmt: skip


# --------------------------------------------------------------------------- settings
def test_the_shipped_default_hashes_contact_and_address_drops_notes_rounds_locations():
    p = Policy(PiiSettings(hash_key=KEY))
    assert {c: str(a) for c, a in p.actions.items()} == {
        "contact": "hash", "staff": "keep", "address": "hash", "location": "round:2",
        "notes": "drop",
    }  # fmt: skip
    assert p.attachments.actions()["id_document"] == "skip"
    assert p.attachments.actions()["bill"] == "download"


def test_the_config_file_resolves_to_the_same_default(monkeypatch):
    monkeypatch.setenv("SOLARSYNC__PII__HASH_KEY", KEY)
    assert {c: str(a) for c, a in policy().actions.items()} == {
        c: str(a) for c, a in Policy(PiiSettings(hash_key=KEY)).actions.items()
    }


def test_a_missing_key_with_a_hash_policy_fails_before_reading_naming_the_setting():
    p = Policy(PiiSettings())
    with pytest.raises(ConfigurationError) as err:
        Redactor("src", DECLARED, p)
    text = str(err.value)
    assert 'contact = "hash"' in text and "hash_key" in text and "secrets.toml" in text
    # nothing hashed: no key needed
    Redactor("src", DECLARED, Policy(PiiSettings(contact="drop", address="mask")))


@pytest.mark.parametrize("key", ["short", "CHANGE-ME-to-a-random-string-of-32-characters"])
def test_a_weak_key_is_refused(key):
    with pytest.raises(ConfigurationError, match="hash_key"):
        Policy(PiiSettings(hash_key=key)).hasher  # noqa: B018


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"contact": "encrypt"}, "contact"),
        ({"location": "blur"}, "location"),
        ({"location_decimals": 12}, "location_decimals"),
        ({"address_keep": ["street"]}, "address_keep"),
        ({"attachments": {"passport": "skip"}}, "unknown categories"),
        ({"attachments": {"bill": "maybe"}}, "download or skip"),
        ({"phone_country_code": "US"}, "phone_country_code"),
    ],
)
def test_bad_settings_name_the_setting(settings, words):
    with pytest.raises(ConfigurationError, match=words):
        make(**settings)


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    "kind, spellings",
    [
        ("email", ["Zoe.Mueller@Example.COM", " zoe.mueller@example.com", "mailto:ZOE.MUELLER@example.com"]),
        ("phone", ["(555) 123-4567", "+1 555 123 4567", "555.123.4567", "1-555-123-4567",
                   "5551234567", "555-123-4567 ext. 12", "+1-555-123-4567"]),
        ("name", ["Zoë Müller", "  ZOE   muller ", "zoe müller"]),
        ("address", ["12 Elm St., Springfield", "12 elm st springfield"]),
    ],
)  # fmt: skip
def test_one_person_one_hash_however_it_is_spelled(kind, spellings):
    hasher = Hasher(KEY)
    hashes = {hasher(normalize(kind, s)) for s in spellings}
    assert len(hashes) == 1 and is_hash(hashes.pop())


def test_hashes_are_keyed():
    assert Hasher(KEY)("x") != Hasher(KEY + "2")("x")
    assert Hasher(KEY).key_id != Hasher(KEY + "2").key_id and KEY not in Hasher(KEY).key_id


def test_masks():
    assert mask("email", "zoe@example.com") == "z***@example.com"
    assert mask("phone", "(555) 123-4567") == "*******4567"
    assert mask("name", "Zoë Müller") == "Z. M."
    keep = frozenset({"city", "state", "zip"})
    assert mask("address", "12 Elm St, Springfield, IL 62704", keep=keep) == (
        "***, Springfield, IL 62704"
    )
    assert mask("file_name", "Bloggs licence.jpg") == "***.jpg"
    assert "4411" not in mask("text", "gate 4411, mail zoe@example.com")


# --------------------------------------------------------------------------- rows
def test_a_row_under_the_default_policy(caplog):
    redactor = Redactor("src", DECLARED, make())
    hasher = Hasher(KEY)
    with caplog.at_level(logging.WARNING, "solarsync.pii"):
        row = redactor.row("leads", lead())
    assert row["id"] == "ld_1" and row["user_id"] == "us_9" and row["status"] == "hot"
    assert row["name"] == hasher(normalize("name", "zoe muller"))
    assert row["email"] == hasher(normalize("email", "zoe.mueller@example.com"))
    assert row["phone"] == hasher("+15551234567")
    assert is_hash(row["address"])
    assert (row["address_city"], row["address_state"], row["address_zip"]) == (
        "Springfield",
        "IL",
        "62704",
    )
    assert "notes" not in row  # dropped: the declared column lands NULL
    assert row["lat"] == 39.78
    # a nested object and a field no declaration names
    assert row["homeowner"]["fullName"] == hasher(normalize("name", "Jo Bloggs"))
    assert row["homeowner"]["contact"]["cell"] == hasher("+15559876543")
    assert row["extraField"] == hasher("jo.bloggs@example.org")
    # files: categorized from their names before the names are dropped
    files = row["attachments"]
    assert [f["file_category"] for f in files] == ["id_document", "bill"]
    assert all("fileName" not in f for f in files)
    warned = caplog.text
    assert "leads.extra_field" in warned and "leads.homeowner" in warned


def test_drop_removes_whole_objects_and_no_empty_object_is_left():
    redactor = Redactor("src", DECLARED, make(contact="drop", address="drop", location="drop"))
    row = redactor.row("leads", lead())
    for key in ("name", "email", "phone", "address", "notes", "lat", "homeowner", "extraField"):
        assert key not in row, key
    assert "address_city" in row  # the kept area parts still come from the address
    kept = Redactor("src", DECLARED, make(contact="drop")).policy.attachments
    assert kept.actions()["bill"] == "skip"  # no files of homeowners without contact data


def test_json_text_and_lists_of_values_are_walked():
    redactor = Redactor("src", DECLARED, make())
    row = redactor.row(
        "leads",
        {"id": "1", "blob": '{"owner": "Jo Bloggs", "reach": "jo@example.org"}',
         "others": ["jo@example.org", {"label": "spouse", "value": "(555) 987-6543"}]},
    )  # fmt: skip
    assert "Jo Bloggs" not in row["blob"] and "jo@example.org" not in row["blob"]
    assert row["others"][0] == Hasher(KEY)("jo@example.org")
    assert row["others"][1]["value"] == Hasher(KEY)("+15559876543")


def test_column_overrides_and_not_personal_columns():
    p = make(columns={"src.leads.referrer": "contact.email", "src.leads.crm_code": "none"})
    row = Redactor("src", DECLARED, p).row(
        "leads", {"id": "1", "referrer": "Jo@Example.org", "crm_code": "555-123-4567"}
    )
    assert row["referrer"] == Hasher(KEY)("jo@example.org")
    assert row["crm_code"] == "555-123-4567"


def test_identifiers_dates_and_versions_are_not_mistaken_for_phone_numbers():
    row = Redactor("src", DECLARED, make()).row(
        "leads",
        {"id": "1", "external_ref": "2024-05-01 10:00:00", "ip": "192.168.100.200",
         "version": "24.12.5 52f95b6c", "count": 5551234567},
    )  # fmt: skip
    assert row["external_ref"] == "2024-05-01 10:00:00"
    assert row["ip"] == "192.168.100.200" and row["count"] == 5551234567


def test_each_source_declares_its_people_and_places(caplog):
    from sources.heat.settings import PII as HEAT
    from sources.solarassistant.settings import PII as SA
    from sources.tesla.settings import PII as TESLA

    hasher, p = Hasher(KEY), make()
    with caplog.at_level(logging.WARNING, "solarsync.pii"):
        site = Redactor("heat", HEAT, p).row(
            "sites",
            {
                "site_id": "s1",
                "site_name": "Site 1",
                "location": {"lat": 52.123456, "lon": 13.98765},
            },
        )
        member = Redactor("solarassistant", SA, p).row(
            "sites", {"id": 7, "name": "my-site", "owner": {"id": 1, "email": "Me@Example.com",
                                                           "first_name": "Alice", "last_name": "Smith"}}
        )  # fmt: skip
        meter = Redactor("tesla", TESLA, p).row(
            "meter_readings", {"gateway": "home", "meter": "site", "location": "solar"}
        )
    assert site["location"] == {"lat": 52.12, "lon": 13.99} and site["site_name"] == "Site 1"
    assert member["owner"]["email"] == hasher("me@example.com")
    assert member["owner"]["first_name"] == hasher("alice") and member["name"] == "my-site"
    assert meter["location"] == "solar"  # where a meter sits, not a place
    assert "not a declared column" not in caplog.text  # all of it declared


def test_other_field_names_a_stand_in_may_use():
    hasher = Hasher(KEY)
    row = Redactor("src", DECLARED, make()).row(
        "leads",
        {"id": "1", "homeownerName": "Jo Bloggs", "contactInfo": {"name": "Jo Bloggs",
         "phoneNumber": "555-987-6543"}, "streetAddress": "9 Oak Rd", "latitude": 40.712776,
         "comments": "dog", "mailingAddress": {"line1": "9 Oak Rd", "zip": "10001"}},
    )  # fmt: skip
    name = hasher(normalize("name", "Jo Bloggs"))
    assert row["homeownerName"] == name and row["contactInfo"]["name"] == name
    assert row["contactInfo"]["phoneNumber"] == hasher("+15559876543")
    assert is_hash(row["streetAddress"]) and is_hash(row["mailingAddress"]["line1"])
    assert row["mailingAddress"]["zip"] == "10001" and row["latitude"] == 40.71
    assert "comments" not in row


def test_sources_that_hash_nothing_need_no_key():
    from sources.heat.settings import PII as HEAT
    from sources.tesla.settings import PII as TESLA

    no_key = Policy(PiiSettings())
    site = Redactor("heat", HEAT, no_key).row(
        "sites", {"site_id": "s", "location": {"lat": 1.23456}}
    )
    assert site["location"] == {"lat": 1.23}
    assert Redactor("tesla", TESLA, no_key).row("site_info", {"site_name": "home"})
