"""Receipt → one ESC/POS byte string (sent in a single write).

Chinese is done explicitly rather than python-escpos' way (GB18030 only when a Hanzi is present,
no mode switch): every line holding a non-ASCII character is sent as ``FS &`` + GB18030 bytes +
``FS .``, so ``¥12.00`` or ``（会员）`` print right too, and the printer is never left in a mode
the next line does not expect. On a printer without a Chinese font such a line is rasterised.
Columns are laid out in display cells (a Hanzi is two), see :mod:`daemon.printers.textwidth`.
"""

from __future__ import annotations

import logging

from daemon.errors import ReceiptInvalid
from daemon.printers import commands as cmd
from daemon.printers.profiles import PrinterProfile
from daemon.printers.raster import logo_to_raster, text_to_raster
from daemon.printers.receipt import (
    Header,
    Item,
    MemberSection,
    Payment,
    Receipt,
    Totals,
    format_fen,
    item_layout,
    validate_receipt,
)
from daemon.printers.textwidth import fit, pad_left, pad_right, text_width, wrap

__all__ = ["ReceiptEncoder"]

logger = logging.getLogger(__name__)

#: the line under the store block of a receipt that is not a sale's
_TITLES = {"refund": "退款单 REFUND", "cancel_topup": "撤销充值 TOP-UP CANCELLED"}


class ReceiptEncoder:
    """Encodes receipts for one printer profile; each section method is usable on its own."""

    def __init__(self, profile: PrinterProfile, stored_logo: bytes | None = None) -> None:
        self.profile = profile
        self.stored_logo = stored_logo
        self.kanji = profile.chinese != "none"
        self.cpl = profile.chars_per_line

    # --- whole receipt --------------------------------------------------------------------

    def encode(self, receipt: Receipt, drawer_pin: int = 2, drawer_pulse_ms: int = 100) -> bytes:
        """Validate and encode ``receipt``; raises :class:`ReceiptInvalid` naming the field."""
        validate_receipt(receipt, self.profile)
        out = bytearray(cmd.INIT + cmd.code_page(self.profile.code_page))
        out += self.header(receipt.header)
        title = _TITLES.get(receipt.member.kind) if receipt.member is not None else None
        if title is not None:  # a refund slip must not pass for a sale receipt
            out += self.text_line(title, bold=True, align="center")
        if receipt.receipt_no:
            out += self.text_line(f"单号: {receipt.receipt_no}")
        if receipt.timestamp:
            out += self.text_line(f"时间: {receipt.timestamp}")
        out += self.rule()
        out += self.items(receipt.items)
        out += self.rule()
        out += self.totals(receipt.totals)
        if receipt.member is not None:
            out += self.rule()
            out += self.member(receipt.member)
        out += self.rule()
        out += self.payments(receipt.payments, receipt.totals.change_fen)
        if receipt.qr is not None:
            out += self.qr(receipt.qr)
        if receipt.barcode is not None:
            out += self.barcode(receipt.barcode)
        out += self.footer(receipt.footer)
        out += self.finish(receipt.cut)
        if receipt.open_drawer:
            out += cmd.drawer_kick(drawer_pin, drawer_pulse_ms)
        return bytes(out)

    def finish(self, cut: bool) -> bytes:
        """Feed past the tear bar and cut (partial if the cutter can), or just feed."""
        if cut and self.profile.cutter:
            return cmd.cut(self.profile.partial_cut)
        return cmd.feed_lines(4)

    # --- building blocks ------------------------------------------------------------------

    def _encode_text(self, text: str) -> bytes | None:
        """Bytes for ``text`` in the current mode, or None when it has to be rasterised."""
        if text.isascii():
            return text.encode("ascii")
        if self.kanji:
            return cmd.KANJI_ON + text.encode("gb18030") + cmd.KANJI_OFF
        try:
            return text.encode(self.profile.codec)
        except UnicodeEncodeError:
            return None

    def text_line(
        self,
        text: str,
        *,
        bold: bool = False,
        align: str = "left",
        width: int = 1,
        height: int = 1,
    ) -> bytes:
        """One printed line with its style set before and reset after."""
        body = self._encode_text(text)
        out = bytearray()
        if align != "left":
            out += cmd.align(align)
        if body is None:
            if align == "center":
                pad = (self.cpl // max(width, 1) - text_width(text, False)) // 2
                text = " " * max(0, pad) + text
            out += text_to_raster(
                text,
                self.profile.dots_per_line,
                self.profile.cell_dots,
                max(width, height),
                bold,
            )
        else:
            if bold:
                out += cmd.BOLD_ON
            if (width, height) != (1, 1):
                out += cmd.size(width, height)
            out += body + cmd.LF
            if (width, height) != (1, 1):
                out += cmd.size(1, 1)
            if bold:
                out += cmd.BOLD_OFF
        if align != "left":
            out += cmd.align("left")
        return bytes(out)

    def rule(self) -> bytes:
        return self.text_line("-" * self.cpl)

    def _pair(self, label: str, value: str, bold: bool = False) -> bytes:
        return self.text_line(fit(label, value, self.cpl, self.kanji), bold=bold)

    # --- sections -------------------------------------------------------------------------

    def header(self, header: Header) -> bytes:
        out = bytearray()
        logo = header.logo_png if header.logo_png is not None else None
        if logo is None and header.use_stored_logo:
            logo = self.stored_logo
        if logo is not None:
            out += cmd.align("center") + logo_to_raster(logo, self.profile.dots_per_line)
            out += cmd.align("left")
        out += self.text_line(header.store_name, bold=True, align="center", width=2, height=2)
        for line in header.lines:
            out += self.text_line(line, align="center")
        return bytes(out)

    def items(self, items: tuple[Item, ...]) -> bytes:
        name_w, qty_w, price_w, amount_w = item_layout(self.profile)
        k = self.kanji
        out = bytearray()
        if name_w:
            out += self.text_line(
                pad_right("商品", name_w, k)
                + pad_left("数量", qty_w, k)
                + pad_left("单价", price_w, k)
                + pad_left("金额", amount_w, k)
            )
        else:
            out += self.text_line(fit("商品 数量/单价", "金额", self.cpl, k))
        for item in items:
            numbers = (
                pad_left(str(item.quantity) if name_w else f"x{item.quantity}", qty_w, k)
                + pad_left(format_fen(item.unit_price_fen), price_w, k)
                + pad_left(format_fen(item.amount_fen), amount_w, k)
            )
            if name_w:
                first, *rest = wrap(item.name, name_w, k)
                out += self.text_line(pad_right(first, name_w, k) + numbers)
                for extra in rest:
                    out += self.text_line(extra)
            else:
                for part in wrap(item.name, self.cpl, k):
                    out += self.text_line(part)
                out += self.text_line(pad_left(numbers, self.cpl, k))
            if item.discount_fen:
                out += self.text_line(
                    fit("  优惠", "-" + format_fen(item.discount_fen), self.cpl, k)
                )
        return bytes(out)

    def totals(self, totals: Totals) -> bytes:
        out = bytearray(self._pair("小计", "¥" + format_fen(totals.subtotal_fen)))
        if totals.discount_fen:
            out += self._pair("优惠", "-¥" + format_fen(totals.discount_fen))
        out += self._pair("合计", "¥" + format_fen(totals.total_fen), bold=True)
        return bytes(out)

    def member(self, member: MemberSection) -> bytes:
        if member.kind != "sale":
            return self._reversal(member)
        rows = [
            ("会员卡号", member.masked_member_id),
            ("会员等级", member.tier),
            ("会员优惠", "-¥" + format_fen(member.discount_fen)),
            ("储值余额(前)", "¥" + format_fen(member.balance_before_fen)),
            ("储值余额(后)", "¥" + format_fen(member.balance_after_fen)),
            ("本次积分", f"+{member.points_earned}"),
            ("积分余额", str(member.points_balance)),
        ]
        return b"".join(self._pair(label, value) for label, value in rows)

    def _reversal(self, member: MemberSection) -> bytes:
        """The member block of a refund slip (退款) or a cancelled top-up (撤销充值)."""
        rows = [("会员卡号", member.masked_member_id), ("会员等级", member.tier)]
        if member.kind == "refund":
            rows.append(("退款金额", "¥" + format_fen(member.amount_fen)))
        else:
            rows.append(("撤销充值", "¥" + format_fen(member.amount_fen)))
            if member.bonus_fen:
                rows.append(("扣回赠送", "-¥" + format_fen(member.bonus_fen)))
        rows += [
            ("储值余额(前)", "¥" + format_fen(member.balance_before_fen)),
            ("储值余额(后)", "¥" + format_fen(member.balance_after_fen)),
        ]
        if member.points_taken_back:
            rows.append(("扣回积分", f"-{member.points_taken_back}"))
        rows.append(("积分余额", str(member.points_balance)))
        out = bytearray(b"".join(self._pair(label, value) for label, value in rows))
        label = "原交易"
        if text_width(label, self.kanji) + 1 + text_width(member.original_ref, self.kanji) <= (
            self.cpl
        ):
            out += self._pair(label, member.original_ref)
        else:  # a long request_id: on its own lines, whole
            out += self.text_line(label)
            for part in wrap(member.original_ref, self.cpl, self.kanji):
                out += self.text_line(part)
        return bytes(out)

    def payments(self, payments: tuple[Payment, ...], change_fen: int = 0) -> bytes:
        out = bytearray()
        for pay in payments:
            out += self._pair(pay.method, "¥" + format_fen(pay.amount_fen))
        if change_fen:
            out += self._pair("找零", "¥" + format_fen(change_fen))
        return bytes(out)

    def qr(self, payload: str) -> bytes:
        if not self.profile.qr_native:
            raise ReceiptInvalid("qr", f"profile {self.profile.name} cannot print QR codes")
        return cmd.align("center") + cmd.qr_code(payload.encode("utf-8")) + cmd.align("left")

    def barcode(self, payload: str) -> bytes:
        return cmd.align("center") + cmd.barcode_code128(payload) + cmd.align("left")

    def footer(self, lines: tuple[str, ...]) -> bytes:
        return b"".join(self.text_line(line, align="center") for line in lines)

    def test_page(self, printer_id: str, status: str) -> bytes:
        """What a technician prints to check a printer: every column and the Chinese font."""
        p = self.profile
        ruler = "".join(str(i % 10) for i in range(1, self.cpl + 1))
        rows = [
            ("打印机", printer_id),
            ("配置 profile", p.name),
            ("纸宽 paper", f"{p.paper_mm} mm / {p.dots_per_line} dots"),
            ("每行 columns", str(self.cpl)),
            ("代码页 ESC t", f"{p.code_page} ({p.codec})"),
            ("中文 Chinese", p.chinese),
            ("状态 status", status),
        ]
        out = bytearray(cmd.INIT + cmd.code_page(p.code_page))
        out += self.text_line("打印测试 PRINT TEST", bold=True, align="center", width=2, height=2)
        out += b"".join(self._pair(label, value) for label, value in rows)
        out += self.text_line(ruler)
        out += self.text_line(fit("中文对齐", "¥12.34", self.cpl, self.kanji))
        out += self.text_line(fit("ASCII align", "¥12.34", self.cpl, self.kanji))
        out += self.text_line("全角标点：（），。！？【】")
        if p.qr_native:
            out += self.qr("carddaemon test page " + printer_id)
        out += self.finish(True)
        return bytes(out)

    def wrap_name(self, name: str) -> list[str]:
        """How an item name is broken on this profile (for previews and tests)."""
        return wrap(name, item_layout(self.profile)[0] or self.cpl, self.kanji)
