"""Classification vectors: check digits, UPC-E, GS1, member tokens, payment code shapes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import ConfigError
from daemon.scanners import (
    Classifier,
    Gs1Error,
    MemberStatus,
    MemberTokenVerifier,
    PaymentProvider,
    ProductKind,
    ScanKind,
    decode_scan,
    gs1_check_digit,
    mask_code,
    parse_gs1,
    symbology_for,
    upce_to_upca,
)
from daemon.scanners.gs1 import GS
from sim.scanners import make_member_token

KEY = b"member-key-0123456789abcdef"
NOW = 1_800_000_000


@pytest.fixture
def classifier() -> Classifier:
    return Classifier(MemberTokenVerifier(KEY, clock=lambda: NOW))


# --- product codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "aim", "kind", "gtin14"),
    [
        ("4006381333931", "]E0", ProductKind.EAN13, "04006381333931"),
        ("4006381333931", None, ProductKind.EAN13, "04006381333931"),
        ("6901234567892", "]E0", ProductKind.EAN13, "06901234567892"),  # 690-699: China
        ("96385074", "]E4", ProductKind.EAN8, "00000096385074"),
        ("036000291452", None, ProductKind.UPCA, "00036000291452"),
        ("04252614", "]E0", ProductKind.UPCE, "00042100005264"),
    ],
)
def test_valid_product_codes(
    classifier: Classifier, code: str, aim: str | None, kind: ProductKind, gtin14: str
) -> None:
    verdict = classifier.classify(code, aim)
    assert verdict.kind is ScanKind.PRODUCT
    assert verdict.valid, verdict.problem
    assert verdict.product is not None
    assert (verdict.product.kind, verdict.product.gtin14) == (kind, gtin14)


@pytest.mark.parametrize(
    ("code", "aim", "expected"),
    [
        ("4006381333932", "]E0", 1),
        ("96385075", "]E4", 4),
        ("036000291453", None, 2),
        ("04252615", "]E0", 4),
    ],
)
def test_wrong_check_digit_is_reported_not_accepted(
    classifier: Classifier, code: str, aim: str | None, expected: int
) -> None:
    verdict = classifier.classify(code, aim)
    assert verdict.kind is ScanKind.PRODUCT
    assert not verdict.valid
    assert verdict.problem is not None
    assert f"should be {expected}" in verdict.problem


def test_ean_symbology_with_odd_length_is_an_invalid_product(classifier: Classifier) -> None:
    verdict = classifier.classify("12345", "]E0")
    assert (verdict.kind, verdict.valid) == (ScanKind.PRODUCT, False)
    assert "5 characters" in (verdict.problem or "")


def test_thirteen_digits_in_a_qr_code_are_not_a_product(classifier: Classifier) -> None:
    assert classifier.classify("4006381333931", "]Q1").kind is ScanKind.TEXT


@pytest.mark.parametrize(
    ("upce", "upca_body"),
    [
        ("01234505", "01200000345"),  # last digit 0-2: mfr d1 d2 d6 00, item 00 d3 d4 d5
        ("01234531", "01230000045"),  # 3: mfr d1 d2 d3 00, item 000 d4 d5
        ("01234543", "01234000005"),  # 4: mfr d1..d4 0, item 0000 d5
        ("01234578", "01234500007"),  # 5-9: mfr d1..d5, item 0000 d6
        ("04252614", "04210000526"),
    ],
)
def test_upce_expansion_rules(upce: str, upca_body: str) -> None:
    assert upce_to_upca(upce) == upca_body + upce[-1]


@pytest.mark.parametrize("bad", ["1234567", "21234567", "0123456X"])
def test_upce_expansion_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError, match="UPC-E"):
        upce_to_upca(bad)


def test_eight_digits_valid_only_as_upce_are_upce(classifier: Classifier) -> None:
    # 04252614 fails the EAN-8 check (expected 3) but is a valid UPC-E.
    verdict = classifier.classify("04252614", None)
    assert verdict.product is not None
    assert (verdict.product.kind, verdict.valid) == (ProductKind.UPCE, True)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789", min_size=7, max_size=12), st.data())
def test_any_single_digit_error_breaks_the_check(body: str, data: st.DataObject) -> None:
    code = body + str(gs1_check_digit(body))
    pos = data.draw(st.integers(0, len(code) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != code[pos]]))
    mutated = code[:pos] + wrong + code[pos + 1 :]
    assert gs1_check_digit(mutated[:-1]) != int(mutated[-1])


# --- GS1 --------------------------------------------------------------------------------------


def test_gs1_element_string_with_fnc1_separators(classifier: Classifier) -> None:
    text = "0104012345678901" + "17261231" + "10LOT-7\x1d" + "3103001250" + "21SN42"
    verdict = classifier.classify(text, "]C1")
    assert verdict.kind is ScanKind.GS1
    assert verdict.valid, verdict.problem
    assert [(e.ai, e.value) for e in verdict.gs1] == [
        ("01", "04012345678901"),
        ("17", "261231"),
        ("10", "LOT-7"),
        ("3103", "001250"),
        ("21", "SN42"),
    ]


def test_gs1_bracketed_form_and_leading_fnc1() -> None:
    assert [e.ai for e in parse_gs1("(01)04012345678901(10)A1")] == ["01", "10"]
    assert [e.ai for e in parse_gs1("\x1d0104012345678901")] == ["01"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0104012345678902", r"\(01\) check digit is wrong"),
        ("00123456789012345670", r"\(00\) check digit is wrong"),  # SSCC
        ("010401234567", r"AI \(01\) pattern"),  # cut short
        ("0104012345678901" + "7777", "Failed to get GS1 Application Identifier from '7777'"),
        ("10" + "A" * 21, "Failed to get GS1 Application Identifier"),  # 20 at most
        ("1712AB31", r"AI \(17\) pattern"),  # not numeric
        ("10\x1d21X", r"AI \(10\) pattern"),  # no data
        ("0104012345678901" + "17261399", r"AI \(17\) pattern"),  # month 13, day 99
        ("0104012345678901" + "17260230", r"\(17\) date"),  # 30 February
        ("(17)261399", r"AI \(17\) pattern"),
        ("", "empty element string"),
    ],
)
def test_gs1_errors_name_the_ai(text: str, message: str) -> None:
    with pytest.raises(Gs1Error, match=message):
        parse_gs1(text)


@pytest.mark.parametrize(
    ("text", "elements"),
    [
        ("8200" + "https://example.com/p/1", [("8200", "https://example.com/p/1")]),
        (
            "7240" + "PROTO-7" + GS + "4300" + "ACME-GMBH",
            [("7240", "PROTO-7"), ("4300", "ACME-GMBH")],
        ),
        (
            "(01)04012345678901(17)261231(4300)SHOP-3",
            [("01", "04012345678901"), ("17", "261231"), ("4300", "SHOP-3")],
        ),
    ],
)
def test_gs1_ais_the_old_table_missed_are_accepted(
    text: str, elements: list[tuple[str, str]], classifier: Classifier
) -> None:
    assert [(e.ai, e.value) for e in parse_gs1(text)] == elements
    if not text.startswith("("):
        verdict = classifier.classify(text, "]C1")
        assert (verdict.kind, verdict.valid) == (ScanKind.GS1, True), verdict.problem


def test_gs1_titles_are_the_librarys() -> None:
    titles = [e.title for e in parse_gs1("0104012345678901" + "17261231" + "10A1")]
    assert titles == ["GTIN", "USE BY or EXPIRY", "BATCH/LOT"]


def test_claimed_gs1_that_fails_is_invalid_gs1(classifier: Classifier) -> None:
    verdict = classifier.classify("0104012345678902", "]C1")
    assert (verdict.kind, verdict.valid) == (ScanKind.GS1, False)
    assert "check digit" in (verdict.problem or "")


def test_text_with_a_stray_separator_is_just_text(classifier: Classifier) -> None:
    assert classifier.classify("hello\x1dworld", None).kind is ScanKind.TEXT


# --- member tokens ----------------------------------------------------------------------------


def test_member_token_valid(classifier: Classifier) -> None:
    token = make_member_token(KEY, "10086", NOW + 60)
    verdict = classifier.classify(token, "]Q1")
    assert (verdict.kind, verdict.valid) == (ScanKind.MEMBER, True)
    assert (verdict.member_id, verdict.member_status) == ("10086", MemberStatus.VALID)
    assert verdict.member_expiry == NOW + 60


_GOOD = make_member_token(KEY, "10086", NOW + 60)
_OTHER_KEY = b"another-key-0123456789"


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (make_member_token(_OTHER_KEY, "10086", NOW + 60), MemberStatus.BAD_SIGNATURE),
        (_GOOD.replace("10086", "10087"), MemberStatus.BAD_SIGNATURE),
        (make_member_token(KEY, "10086", NOW - 1), MemberStatus.EXPIRED),
        (_GOOD[:-2], MemberStatus.MALFORMED),
        ("CDM1.10086.x.00", MemberStatus.MALFORMED),
        ("CDM1.", MemberStatus.MALFORMED),
        ("CDM1." + _GOOD[5:].upper(), MemberStatus.MALFORMED),  # MAC hex must be lowercase
    ],
)
def test_member_token_rejections(classifier: Classifier, token: str, status: MemberStatus) -> None:
    verdict = classifier.classify(token, "]Q1")
    assert verdict.kind is ScanKind.MEMBER
    assert verdict.member_status is status
    assert not verdict.valid
    assert verdict.problem == f"member token {status.value.lower()}"


def test_expired_token_with_bad_signature_says_bad_signature(classifier: Classifier) -> None:
    token = make_member_token(b"another-key-0123456789", "1", NOW - 100)
    assert classifier.classify(token, None).member_status is MemberStatus.BAD_SIGNATURE


def test_member_token_redaction_hides_the_mac_and_key_never_shows() -> None:
    verifier = MemberTokenVerifier(KEY, clock=lambda: NOW)
    token = make_member_token(KEY, "10086", NOW + 60)
    redacted = verifier.redact(token)
    assert redacted.startswith(f"CDM1.10086.{NOW + 60}.")
    assert token.rsplit(".", 1)[1] not in redacted
    assert KEY.decode() not in repr(verifier)


def test_custom_member_pattern() -> None:
    verifier = MemberTokenVerifier(
        KEY,
        prefix="M:",
        pattern=r"M:(?P<member_id>[A-Z0-9]+):(?P<expiry>\d+):(?P<mac>[0-9a-f]{32})",
        clock=lambda: NOW,
    )
    import hashlib
    import hmac

    signed = f"M:VIP7:{NOW + 5}:"
    mac = hmac.new(KEY, signed.encode(), hashlib.sha256).digest()[:16].hex()
    verdict = Classifier(verifier).classify(signed + mac, None)
    assert (verdict.member_id, verdict.member_status) == ("VIP7", MemberStatus.VALID)


def test_custom_pattern_letting_letters_into_the_expiry_is_malformed_not_a_crash() -> None:
    verifier = MemberTokenVerifier(
        KEY, prefix="M:", pattern=r"M:(?P<member_id>\d+):(?P<expiry>\w+):(?P<mac>[0-9a-f]{32})"
    )
    verdict = Classifier(verifier).classify("M:7:soon:" + "0" * 32, None)
    assert (verdict.kind, verdict.valid) == (ScanKind.MEMBER, False)
    assert verdict.member_status is MemberStatus.MALFORMED


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"key": b"short"}, "scanners.member_key"),
        ({"key": KEY, "pattern": "CDM1.(?P<member_id>"}, "scanners.member_pattern"),
        ({"key": KEY, "pattern": r"CDM1\.(?P<member_id>\d+)"}, "scanners.member_pattern"),
        ({"key": KEY, "prefix": ""}, "scanners.member_prefix"),
    ],
)
def test_member_verifier_config_errors_name_the_key(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        MemberTokenVerifier(**kwargs)
    assert err.value.key == key
    assert KEY.decode() not in str(err.value)


def test_without_a_verifier_member_tokens_are_text() -> None:
    assert Classifier().classify(make_member_token(KEY, "1", NOW), None).kind is ScanKind.TEXT


# --- payment codes ----------------------------------------------------------------------------


def _digits(prefix: str, length: int) -> str:
    return (prefix + "1234567890" * 3)[:length]


@pytest.mark.parametrize("prefix", ["10", "11", "12", "13", "14", "15"])
def test_wechat_pay_every_prefix(classifier: Classifier, prefix: str) -> None:
    verdict = classifier.classify(_digits(prefix, 18), "]Q1")
    assert (verdict.kind, verdict.payment) == (ScanKind.PAYMENT, PaymentProvider.WECHAT_PAY)


@pytest.mark.parametrize("prefix", ["25", "26", "27", "28", "29", "30"])
@pytest.mark.parametrize("length", [16, 20, 24])
def test_alipay_every_prefix_and_length_bound(
    classifier: Classifier, prefix: str, length: int
) -> None:
    verdict = classifier.classify(_digits(prefix, length), None)
    assert (verdict.kind, verdict.payment) == (ScanKind.PAYMENT, PaymentProvider.ALIPAY)


def test_unionpay_is_19_digits_starting_62(classifier: Classifier) -> None:
    verdict = classifier.classify(_digits("62", 19), "]C0")
    assert (verdict.kind, verdict.payment) == (ScanKind.PAYMENT, PaymentProvider.UNIONPAY)


@pytest.mark.parametrize(
    "text",
    [
        _digits("10", 17),  # WeChat is exactly 18
        _digits("15", 19),
        _digits("09", 18),  # below 10
        _digits("16", 18),  # above 15
        _digits("25", 15),  # Alipay 16..24
        _digits("30", 25),
        _digits("24", 18),  # below 25
        _digits("31", 18),  # above 30
        _digits("62", 18),  # UnionPay is 19
        _digits("62", 20),
        _digits("10", 17) + "A",  # not all digits
    ],
)
def test_near_misses_are_not_payment_codes(classifier: Classifier, text: str) -> None:
    verdict = classifier.classify(text, "]Q1")
    assert verdict.kind is ScanKind.TEXT
    assert verdict.payment is None


def test_payment_shape_under_an_ean_aim_is_not_payment(classifier: Classifier) -> None:
    assert classifier.classify(_digits("10", 18), "]E0").kind is ScanKind.PRODUCT


def test_payment_codes_are_masked_for_logs(classifier: Classifier) -> None:
    code = "101234567890123456"
    verdict = classifier.classify(code, "]Q1")
    assert verdict.sensitive
    assert classifier.redact(code, verdict) == "1012**********3456"
    assert mask_code("1234") == "****"


# --- symbology and decoding -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aim", "name", "upos"),
    [
        ("]E0", "EAN13", 104),
        ("]E4", "EAN8", 103),
        ("]C1", "GS1_128", 120),
        ("]Q1", "QR", 204),
        ("]Q3", "GS1_QR", 209),
        ("]d2", "GS1_DATAMATRIX", 208),
        ("]h1", "HANXIN", 215),
        ("]C0", "CODE128", 110),
        (None, "UNKNOWN", 0),
        ("]Y9", "UNKNOWN", 0),
    ],
)
def test_aim_to_symbology(aim: str | None, name: str, upos: int) -> None:
    sym = symbology_for(aim)
    assert (sym.name, sym.upos_type) == (name, upos)


def test_decoding_utf8_gb18030_and_fallback() -> None:
    assert decode_scan("会员卡".encode()) == "会员卡"
    assert decode_scan("会员卡".encode("gb18030")) == "会员卡"
    assert decode_scan(b"\xff\xfe\x80") == "\xff\xfe\x80"
