"""The simulated scanners are as strict as the real ones, and scriptable."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import serial
import usb.core
import usb.util

from daemon.errors import InvalidArgument, ScannerUnavailable
from demo.scans import run_scanner_demo
from sim.scanners import SimHidPosDevice, SimSerialScanner, SimUsbBackend
from sim.scanners.script import play


def _find(backend: SimUsbBackend) -> usb.core.Device:
    dev = usb.core.find(idVendor=0x0C2E, idProduct=0x0B61, backend=backend)
    assert dev is not None
    return dev


def test_pyusb_finds_the_simulated_device_with_its_descriptors() -> None:
    backend = SimUsbBackend(SimHidPosDevice(0x0C2E, 0x0B61, port_path=(1, 4)))
    dev = _find(backend)
    intf = dev.get_active_configuration()[(0, 0)]
    ep = intf[0]
    assert (intf.bInterfaceClass, ep.bEndpointAddress, ep.wMaxPacketSize) == (3, 0x81, 64)
    assert usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_INTR
    assert tuple(dev.port_numbers) == (1, 4)
    assert usb.core.find(idVendor=0x1234, backend=backend) is None


def test_claim_fails_while_usbhid_owns_the_interface() -> None:
    sim = SimHidPosDevice()
    dev = _find(SimUsbBackend(sim))
    with pytest.raises(usb.core.USBError) as err:
        usb.util.claim_interface(dev, 0)
    assert err.value.errno == errno.EBUSY
    sim.scan("lost")
    assert sim.reports_to_kernel == 1  # the kernel driver got it, not us
    usb.util.dispose_resources(dev)


def test_kernel_driver_cannot_reattach_while_claimed() -> None:
    sim = SimHidPosDevice()
    dev = _find(SimUsbBackend(sim))
    dev.detach_kernel_driver(0)
    usb.util.claim_interface(dev, 0)
    with pytest.raises(usb.core.USBError) as err:
        dev.attach_kernel_driver(0)
    assert err.value.errno == errno.EBUSY
    usb.util.release_interface(dev, 0)
    dev.attach_kernel_driver(0)
    assert sim.kernel_driver_attached
    usb.util.dispose_resources(dev)


def test_read_times_out_and_stale_handles_die_after_replug() -> None:
    sim = SimHidPosDevice()
    dev = _find(SimUsbBackend(sim))
    dev.detach_kernel_driver(0)
    usb.util.claim_interface(dev, 0)
    with pytest.raises(usb.core.USBTimeoutError):
        dev.read(0x81, 64, 5)
    sim.scan("hi", aim="]Q1")
    assert bytes(dev.read(0x81, 64, 100))[:7] == b"\x02\x02]Q1hi"
    sim.unplug()
    sim.scan("while unplugged")
    assert sim.reports_dropped_unplugged == 1
    sim.replug()
    with pytest.raises(usb.core.USBError) as err:
        dev.read(0x81, 64, 5)
    assert err.value.errno == errno.ENODEV  # the old handle belongs to the old address
    usb.util.dispose_resources(dev)


def test_serial_sim_link_follows_the_pty_and_vanishes_when_unplugged(tmp_path: Path) -> None:
    link = tmp_path / "ttyScanner"
    with SimSerialScanner(link) as sim:
        first = sim.tty_name
        assert os.path.realpath(link) == first
        with serial.serial_for_url(str(link), timeout=1) as port:
            sim.scan("4006381333931", aim="]E0", garbage=b"\x00")
            assert port.read_until(b"\r") == b"\x00]E04006381333931\r"
        sim.unplug()
        assert not link.exists()
        with pytest.raises(ScannerUnavailable, match="unplugged"):
            sim.scan("x")
        sim.plug()
        assert os.path.realpath(link) == sim.tty_name


def test_serial_sim_unplug_breaks_an_open_port(tmp_path: Path) -> None:
    with SimSerialScanner(tmp_path / "tty") as sim:
        port = serial.serial_for_url(str(sim.link_path), timeout=1)
        try:
            sim.unplug()
            with pytest.raises(serial.SerialException):
                port.read(1)
        finally:
            port.close()


def test_script_plays_scans_pauses_and_hotplug(tmp_path: Path) -> None:
    pauses: list[float] = []
    with SimSerialScanner(tmp_path / "tty") as sim:
        port = serial.serial_for_url(str(sim.link_path), timeout=1)
        try:
            n = play(
                sim,
                ["scan 0104012345678901<GS>10A ]C1", "pause 0.25", "raw 00ff", "", "# comment"],
                sleep=pauses.append,
            )
            assert port.read_until(b"\r") == b"]C10104012345678901\x1d10A\r"
            assert port.read(2) == b"\x00\xff"
        finally:
            port.close()
        assert (n, pauses) == (1, [0.25, 0.0, 0.0])
        play(sim, ["unplug"])
        assert not sim.plugged
        play(sim, ["plug"])
        assert sim.plugged


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("jump", "unknown step 'jump'"),
        ("scan", "scan takes 1..2 arguments"),
        ("raw zz", "bad raw argument"),
        ("pause -1", "bad pause argument"),
    ],
)
def test_bad_script_steps_name_the_line_and_run_nothing(line: str, message: str) -> None:
    sim = SimHidPosDevice()
    with pytest.raises(InvalidArgument, match=message) as err:
        play(sim, ["unplug", line])
    assert err.value.field == "script line 2"
    assert sim.plugged  # the first step did not run either


def test_demo_store_scanner_run_masks_for_the_technician() -> None:
    lines = run_scanner_demo()
    assert len(lines) == 7
    body = "\n".join(lines)
    for kind in ("PRODUCT", "MEMBER", "PAYMENT", "GS1"):
        assert kind in body
    wechat = next(line for line in lines if "WECHAT_PAY" in line)
    assert "134567890123456789" in wechat  # POS column
    assert "1345**********6789" in wechat  # technician column
