"""Consultation templates: every mistake is reported with file, line and a hint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server.permissions import PRESETS, Permission
from server.templates import (
    Problem,
    Template,
    TemplateError,
    check_files,
    load_template,
    load_templates,
)

SHIPPED = Path(__file__).resolve().parent.parent / "consult_templates"
KINDS = {"bereavement", "legal", "care", "facility_tour", "public_hearing", "council"}

# a small valid template; the line numbers below are the ones the cases refer to
BASE = """\
label = { ja = "相談", en = "Consultation" }
description = { ja = "説明", en = "Description" }
anonymity = "none"

[floor]
mode = "open"

[roles.staff]
label = { ja = "職員", en = "Staff" }
preset = "host"
join = ["staff"]

[roles.guest]
label = { ja = "来庁者", en = "Guest" }
preset = "participate"
join = ["link"]
lobby = true
"""

HEARING = """\
label = { ja = "公聴会", en = "Hearing" }
description = { ja = "説明", en = "Description" }
anonymity = "pseudonym"
registration = true

[floor]
mode = "raise_hand"
turn_seconds = 180

[roles.staff]
label = { ja = "職員", en = "Staff" }
preset = "registrar"
join = ["staff"]

[roles.resident]
label = { ja = "参加者", en = "Resident" }
preset = "listen"
permissions = ["publish_audio"]
join = ["registration", "passcode"]
lobby = true
anonymous = true
"""


def write(directory: Path, text: str, name: str = "kind") -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    return caught.value.problems


def test_base_and_hearing_examples_are_valid(tmp_path: Path) -> None:
    assert load_template(write(tmp_path, BASE)).name == "kind"
    assert load_template(write(tmp_path, HEARING)).anonymity == "pseudonym"


# each class of mistake: (old text, new text, expected line, expected part of the message)
MISTAKES = [
    pytest.param(
        'mode = "open"',
        'mode = "open"\nturn_second = 3',
        7,
        "unknown key `turn_second` in [floor]; did you mean `turn_seconds`?",
        id="unknown key with hint",
    ),
    pytest.param(
        "lobby = true",
        "lobby = true\nlobyy = false",
        18,
        "unknown key `lobyy` in [roles.guest]; did you mean `lobby`?",
        id="unknown role key",
    ),
    pytest.param(
        'anonymity = "none"',
        'anonymity = "none"\n[limits]\nmax_duration_minutes = 90\nrecording = "off"',
        6,
        "unknown key `recording` in [limits]; it belongs in the top level, before the first",
        id="top-level key written after a table",
    ),
    pytest.param(
        'anonymity = "none"',
        'anonymity = "none"\nturn_seconds = 60',
        4,
        "unknown key `turn_seconds` in the top level; it belongs in [floor]",
        id="key of another table",
    ),
    pytest.param(
        'preset = "participate"',
        'preset = "participate"\npermissions = ["publish_screen"]\ndeny = ["publish_screen"]',
        17,
        "`publish_screen` is both granted in `permissions` and denied",
        id="permission granted and denied",
    ),
    pytest.param(
        "[floor]",
        "[flor]",
        5,
        "unknown key `flor` in the top level; did you mean `floor`?",
        id="unknown table",
    ),
    pytest.param(
        '"Staff" }',
        '"Staff", jp = "x" }',
        9,
        "unknown key `jp` in [roles.staff.label]",
        id="unknown key in inline label",
    ),
    pytest.param(
        "lobby = true",
        'lobby = "yes"',
        17,
        "`lobby` must be true/false, not a string",
        id="wrong type bool",
    ),
    pytest.param(
        'join = ["link"]',
        'join = "link"',
        16,
        "`join` must be a list, not a string",
        id="wrong type list",
    ),
    pytest.param(
        "lobby = true",
        "lobby = true\nmax_participants = true",
        18,
        "`max_participants` must be an integer, not true/false",
        id="bool is not an integer",
    ),
    pytest.param(
        "lobby = true",
        "lobby = true\nmax_participants = 0",
        18,
        "`max_participants` must be between 1 and 10000, not 0",
        id="integer out of bounds",
    ),
    pytest.param(
        'preset = "participate"',
        'preset = "participate"\npermissions = ["chta"]',
        16,
        "unknown permission `chta`; did you mean `chat`?",
        id="unknown permission",
    ),
    pytest.param(
        'preset = "participate"',
        'preset = "participate"\ndeny = [\n  "chat",\n  "rise_hand",\n]',
        18,
        "unknown permission `rise_hand`; did you mean `raise_hand`?",
        id="unknown permission in multi-line list points at its own line",
    ),
    pytest.param(
        'preset = "participate"',
        'preset = "participant"',
        15,
        "unknown preset `participant`; did you mean `participate`?",
        id="unknown preset",
    ),
    pytest.param(
        'join = ["link"]',
        'join = ["lnk"]',
        16,
        "unknown join method `lnk`; did you mean `link`?",
        id="unknown join method",
    ),
    pytest.param(
        'join = ["link"]',
        "join = []",
        16,
        "`join` must name at least one way in",
        id="empty join",
    ),
    pytest.param(
        'anonymity = "none"',
        'anonymity = "psuedonym"',
        3,
        "invalid `anonymity` value `psuedonym`; did you mean `pseudonym`?",
        id="invalid value",
    ),
    pytest.param(
        'mode = "open"',
        'mode = "hands"',
        6,
        "invalid `mode` value `hands`; expected one of `open`",
        id="invalid value without a close match",
    ),
    pytest.param(
        'description = { ja = "説明", en = "Description" }\n',
        "",
        1,
        "missing required key `description` in the top level",
        id="missing required field",
    ),
    pytest.param(
        'label = { ja = "来庁者", en = "Guest" }\n',
        "",
        13,
        "missing required key `label` in [roles.guest]",
        id="missing role label",
    ),
    pytest.param(
        'join = ["link"]\n',
        "",
        13,
        "missing required key `join` in [roles.guest]",
        id="missing join",
    ),
    pytest.param(
        '"Guest" }',
        '"" }',
        14,
        "`en` must not be empty",
        id="empty label",
    ),
    pytest.param(
        'preset = "participate"\n',
        "",
        13,
        "role [roles.guest] needs a `preset` or `permissions`",
        id="role without permissions",
    ),
    pytest.param(
        'preset = "participate"',
        'preset = "observe"\ndeny = ["subscribe"]',
        16,
        "role [roles.guest] is left with no permission at all",
        id="role denied everything",
    ),
    pytest.param(
        "[roles.guest]",
        "[roles.Guest]",
        13,
        "role name `Guest` must be snake_case",
        id="role name",
    ),
    pytest.param(
        'anonymity = "none"',
        'anonymity = "none"\ncreator_role = "staf"',
        4,
        "`creator_role` names no role: `staf`; did you mean `staff`?",
        id="role reference to nothing",
    ),
    pytest.param(
        "[roles.staff]",
        "[roles.clerk]",
        8,
        "no role `staff`: set `creator_role`",
        id="default creator role missing",
    ),
    pytest.param(
        'mode = "open"',
        'mode = "open"\nturn_seconds = 60',
        7,
        "`turn_seconds` applies only to floor mode `raise_hand`",
        id="turn seconds in open floor",
    ),
    pytest.param(
        'mode = "open"',
        'mode = "raise_hand"\nturn_seconds = 3',
        7,
        "`turn_seconds` must be between 10 and 3600, not 3",
        id="turn seconds unit mistake",
    ),
    pytest.param(
        'anonymity = "none"',
        'anonymity = "none"\n[limits]\ndefault_duration_minutes = 90\nmax_duration_minutes = 60',
        5,
        "`default_duration_minutes` (90) exceeds `max_duration_minutes` (60)",
        id="default longer than max",
    ),
    pytest.param(
        'anonymity = "none"',
        'anonymity = "none"\n[checklist]\nja = "x"',
        4,
        "`checklist` must be a list, not a table",
        id="checklist written as a table",
    ),
    pytest.param(
        "lobby = true",
        'lobby = true\n\n[[checklist]]\nja = "印鑑"\nen = "Seal"\n\n[[checklist]]\nja = "x"',
        23,
        "missing required key `en` in [checklist]",
        id="second checklist item missing en",
    ),
    pytest.param(
        "lobby = true",
        "lobby = tru",
        17,
        "TOML syntax error: Invalid value",
        id="toml syntax error",
    ),
    pytest.param(
        'join = ["link"]',
        'join = ["link",',
        17,
        "TOML syntax error",
        id="toml error at end of document",
    ),
]


@pytest.mark.parametrize(("old", "new", "line", "message"), MISTAKES)
def test_each_mistake_is_reported_with_file_line_and_hint(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    path = write(tmp_path, edit(BASE, old, new))
    found = problems_of(path)
    assert any(message in p.message for p in found), found
    problem = next(p for p in found if message in p.message)
    assert (problem.file, problem.line) == (str(path), line)
    assert str(problem).startswith(f"{path}:{line}: ")


# consistency rules: (template, edits as (old, new) pairs, expected line, expected message)
STAFF_DENY = 'preset = "{}"\ndeny = ["{}"]'
RULES = [
    pytest.param(
        BASE,
        [('preset = "host"', STAFF_DENY.format("host", "admit"))],
        18,
        "role `guest` waits in the lobby, but no role outside it can `admit`",
        id="lobby needs a role that can admit",
    ),
    pytest.param(
        HEARING,
        [('preset = "registrar"', STAFF_DENY.format("registrar", "grant_floor"))],
        7,
        "floor mode `raise_hand` needs a role with `grant_floor`",
        id="raise hand needs grant floor",
    ),
    pytest.param(
        HEARING,
        [
            ('preset = "registrar"', STAFF_DENY.format("registrar", "raise_hand")),
            ('preset = "listen"', 'preset = "observe"'),
        ],
        7,
        "floor mode `raise_hand` needs a role with `raise_hand`",
        id="raise hand needs someone to raise a hand",
    ),
    pytest.param(
        HEARING,
        [("anonymous = true", "anonymous = false")],
        3,
        "anonymity `pseudonym` needs a role with `anonymous = true`",
        id="anonymity needs an anonymous role",
    ),
    pytest.param(
        BASE,
        [("lobby = true", 'lobby = true\nanonymous = true\ndeny = ["publish_video"]')],
        18,
        "role `guest` is anonymous, but the template's `anonymity` is `none`",
        id="anonymous role without anonymity",
    ),
    pytest.param(
        HEARING,
        [('anonymity = "pseudonym"', 'anonymity = "sealed"')],
        10,
        "role `staff` may `see_identities`, but anonymity `sealed`",
        id="sealed forbids see identities",
    ),
    pytest.param(
        HEARING,
        [('permissions = ["publish_audio"]', 'permissions = ["publish_video"]')],
        15,
        "anonymous role `resident` may publish video",
        id="anonymous role without camera",
    ),
    pytest.param(
        HEARING,
        [("anonymous = true", "anonymous = true\nask_display_name = true")],
        22,
        "anonymous role `resident` is shown by pseudonym",
        id="anonymous role asks no display name",
    ),
    pytest.param(
        HEARING,
        [('join = ["registration", "passcode"]', 'join = ["registration"]')],
        19,
        'role `resident` joins by `registration`: add "passcode" to `join`',
        id="registration needs passcode",
    ),
    pytest.param(
        HEARING,
        [("registration = true", "registration = false")],
        19,
        "role `resident` joins by `registration`, but `registration` is off",
        id="registration join needs the page",
    ),
    pytest.param(
        BASE,
        [('anonymity = "none"', 'anonymity = "none"\nregistration = true')],
        4,
        "`registration = true` needs a role with `registration` in `join`",
        id="registration page needs a role",
    ),
    pytest.param(
        BASE,
        [
            ('anonymity = "none"', 'anonymity = "none"\nrecording = "consent"'),
            ('preset = "host"', STAFF_DENY.format("host", "record")),
        ],
        4,
        '`recording = "consent"` needs a role with `record`',
        id="consent recording needs a recorder",
    ),
    pytest.param(
        BASE,
        [('join = ["staff"]', 'join = ["link"]')],
        11,
        "creator role `staff` must join by `staff` and skip the lobby",
        id="creator must be staff",
    ),
]


@pytest.mark.parametrize(("base", "edits", "line", "message"), RULES)
def test_consistency_rules(
    tmp_path: Path, base: str, edits: list[tuple[str, str]], line: int, message: str
) -> None:
    text = base
    for old, new in edits:
        text = edit(text, old, new)
    found = problems_of(write(tmp_path, text))
    assert [(p.line, message in p.message) for p in found] == [(line, True)], found


def test_all_problems_of_a_file_are_reported_not_only_the_first(tmp_path: Path) -> None:
    text = edit(BASE, 'anonymity = "none"', 'anonymity = "nope"')
    text = edit(text, "lobby = true", "lobby = 1\ncolour = 'red'")
    found = problems_of(write(tmp_path, text))
    assert [p.line for p in found] == [3, 17, 18]


def test_consistency_waits_until_roles_are_read(tmp_path: Path) -> None:
    # a broken staff role must not also produce "no role can admit"
    found = problems_of(write(tmp_path, edit(BASE, 'preset = "host"', 'preset = "hots"')))
    assert [p.message for p in found] == ["unknown preset `hots`; did you mean `host`?"]


def test_label_written_as_one_string_asks_for_both_languages(tmp_path: Path) -> None:
    text = edit(BASE, 'label = { ja = "相談", en = "Consultation" }', 'label = "相談"')
    found = problems_of(write(tmp_path, text))
    assert [(p.line, p.message) for p in found] == [
        (1, '`label` needs both languages: label = { ja = "…", en = "…" }')
    ]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "kind.toml"
    path.write_bytes(BASE.encode("utf-8-sig"))
    assert load_template(path).label.ja == "相談"


def test_shift_jis_file_is_asked_to_be_saved_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "kind.toml"
    path.write_bytes(BASE.encode("shift_jis"))
    assert "save the file as UTF-8" in problems_of(path)[0].message


def test_file_name_must_be_snake_case(tmp_path: Path) -> None:
    found = problems_of(write(tmp_path, BASE, name="Public-Hearing"))
    assert "file name `Public-Hearing` must be snake_case" in found[0].message


def test_role_lookup_raises_template_error_with_hint(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, BASE))
    assert template.role("guest").lobby
    assert template.roles_with(Permission.admit) == [template.role("staff")]
    with pytest.raises(TemplateError, match="has no role `gest`; did you mean `guest`"):
        template.role("gest")


def test_defaults_for_omitted_fields(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, edit(BASE, '[floor]\nmode = "open"\n', "")))
    guest = template.role("guest")
    assert (template.floor.mode, template.floor.turn_seconds) == ("open", None)
    assert (template.default_duration_minutes, template.max_duration_minutes) == (60, 120)
    assert (template.recording, template.registration, template.checklist) == ("off", False, ())
    assert (guest.anonymous, guest.ask_display_name, guest.max_participants) == (
        False,
        False,
        None,
    )


def test_permissions_are_preset_plus_granted_minus_denied(tmp_path: Path) -> None:
    text = edit(
        BASE, 'preset = "participate"', 'preset = "listen"\npermissions = ["publish_audio"]'
    )
    text = edit(text, "lobby = true", 'lobby = true\ndeny = ["chat"]')
    guest = load_template(write(tmp_path, text)).role("guest")
    assert guest.permissions == {
        Permission.subscribe,
        Permission.raise_hand,
        Permission.publish_audio,
    }


def test_recording_off_strips_record_even_from_host(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, BASE))
    assert not template.role("staff").can(Permission.record)
    consent = edit(BASE, 'anonymity = "none"', 'anonymity = "none"\nrecording = "consent"')
    assert load_template(write(tmp_path, consent)).role("staff").can(Permission.record)


def test_roles_keep_file_order(tmp_path: Path) -> None:
    assert list(load_template(write(tmp_path, BASE)).roles) == ["staff", "guest"]


def test_presets_deny_by_default() -> None:
    assert Permission.see_identities not in PRESETS["host"]
    assert PRESETS["registrar"] == PRESETS["host"] | {Permission.see_identities}
    assert PRESETS["observe"] == {Permission.subscribe}
    assert Permission.publish_screen not in PRESETS["participate"]
    assert len(Permission) == 12


def test_all_shipped_templates_load() -> None:
    templates = load_templates(SHIPPED)
    assert set(templates) == KINDS
    assert all(isinstance(template, Template) for template in templates.values())


def test_public_hearing_residents_are_anonymous_voices_in_a_queue() -> None:
    hearing = load_template(SHIPPED / "public_hearing.toml")
    resident = hearing.role("resident")
    assert hearing.registration and hearing.anonymity == "pseudonym"
    assert (hearing.floor.mode, hearing.floor.turn_seconds) == ("raise_hand", 180)
    assert resident.anonymous and resident.max_participants == 300
    assert resident.can(Permission.publish_audio) and not resident.can(Permission.publish_video)
    assert resident.join == {"registration", "passcode"}
    watchers = [r.name for r in hearing.roles.values() if r.can(Permission.see_identities)]
    assert watchers == ["registrar"]


def test_legal_consultation_is_limited_to_30_minutes_and_the_lawyer_presents() -> None:
    legal = load_template(SHIPPED / "legal.toml")
    assert legal.max_duration_minutes == 30
    assert legal.role("lawyer").can(Permission.publish_screen)
    assert legal.role("citizen").lobby


def test_bereavement_checklist_lists_the_documents_to_bring() -> None:
    bereavement = load_template(SHIPPED / "bereavement.toml")
    documents = " ".join(item.ja for item in bereavement.checklist)
    for document in ("死亡診断書", "戸籍謄本", "印鑑", "通帳", "年金証書", "保険証"):
        assert document in documents
    assert bereavement.role("heir").max_participants == 6


def test_council_records_by_consent_and_operators_mute() -> None:
    council = load_template(SHIPPED / "council.toml")
    assert council.recording == "consent" and council.creator_role == "secretariat"
    assert council.role("operator").can(Permission.mute_others)
    assert not council.role("operator").can(Permission.publish_audio)


def test_a_citys_own_template_is_picked_up_without_code_changes(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    shutil.copytree(SHIPPED, directory)
    write(directory, edit(BASE, "相談", "住まいの相談"), name="housing")
    templates = load_templates(directory)
    assert set(templates) == KINDS | {"housing"}
    assert templates["housing"].label.ja == "住まいの相談"


def test_load_templates_lists_the_problems_of_every_file(tmp_path: Path) -> None:
    write(tmp_path, BASE, name="good")
    first = write(tmp_path, edit(BASE, "lobby = true", "lobby = yes"), name="broken")
    second = write(tmp_path, edit(BASE, '"host"', '"hots"'), name="other")
    with pytest.raises(TemplateError) as caught:
        load_templates(tmp_path)
    assert [p.file for p in caught.value.problems] == [str(first), str(second)]
    assert str(caught.value).count("\n") == 1


def test_load_templates_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="template directory not found"):
        load_templates(tmp_path / "nowhere")


def test_check_files_returns_every_problem_as_file_line_message(tmp_path: Path) -> None:
    good = write(tmp_path, BASE, name="good")
    bad = write(tmp_path, edit(BASE, 'preset = "host"', 'preset = "hots"'), name="bad")
    missing = tmp_path / "missing.toml"
    found = check_files([good, bad, missing])
    assert str(found[0]) == f"{bad}:10: unknown preset `hots`; did you mean `host`?"
    assert found[1].file == str(missing) and "cannot read" in found[1].message
    assert check_files(sorted(SHIPPED.glob("*.toml"))) == []
