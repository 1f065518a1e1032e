#!/usr/bin/env python3
"""Reject ARM ELF files that contain instructions an ARMv6 (+VFPv2) core cannot run.

The Pi Zero, Zero W/WH and Pi 1 use an ARM1176JZF-S: ARMv6 with the v6K and
v6Z additions (ARMv6KZ), ARM and Thumb-1 instruction sets, VFPv2 with 16 double
registers, no NEON, no Thumb-2.  That core is the default baseline here.
Rust's arm-unknown-linux-{gnu,musl}eabihf code uses ARMv6K instructions
(ldrexb/strexb for AtomicBool, ldrexd/strexd for AtomicU64), which the ARM1176
has; --strict-armv6 rejects them too, for the older ARM1136 (plain ARMv6).

The file is disassembled with a binutils objdump for ARM.  objdump decides ARM
versus Thumb state from the ELF mapping symbols ($a/$t/$d), so the file must
still have its symbol table (strip debug info only, never the symtab): a fully
stripped file is refused rather than scanned half blind.

What is rejected, and why (architecture version that introduced it):

ARM state
  ARMv6T2: movw, movt (16-bit immediate halves), bfc, bfi, sbfx, ubfx (bit
           fields), rbit, mls, ldrht/strht/ldrsbt/ldrsht (unprivileged halfword).
  ARMv7:   dmb, dsb, isb (barriers; ARMv6 uses CP15 c7 operations instead),
           pli, dbg; pldw (v7 MP extension).
  integer divide: sdiv, udiv (ARMv7VE / ARMv7-R / ARMv8 only; never on v6).
  ARMv7VE: hvc, eret.
  ARMv8 (AArch32): lda*/stl* (acquire/release, incl. exclusive forms), hlt,
           sevl, crc32*, aes*/sha1*/sha256*.
  ARMv6K/v6Z (the ARM1176 has them, plain ARMv6 does not; accepted unless
           --strict-armv6): ldrexb/ldrexh/ldrexd, strexb/strexh/strexd, clrex,
           the yield/wfe/wfi/sev hints and the architected NOP hint encoding,
           smc (v6Z security extension), CP15 c13 thread-ID register access
           (mrc/mcr p15, 0, Rt, c13, c0, {2,3,4}).
  So of the exclusive-access family, plain ldrex/strex (ARMv6) and the
  byte/halfword/doubleword forms (ARMv6K) pass, while the ARMv8
  load-acquire/store-release exclusives (ldaex*, stlex*) fail.  udf is allowed:
  its encoding is permanently undefined on every ARM, which is what a trap wants.

Floating point / SIMD (everything starting with "v")
  Only the VFPv2 instruction set is allowed: vabs vadd vsub vmul vdiv vsqrt
  vneg vmla vmls vnmla vnmls vnmul vcmp vcmpe vcvt vcvtr vmov vmrs vmsr vldr
  vstr vldm* vstm* vpush vpop, with .f32/.f64 data (plus .s32/.u32 for vcvt,
  .32 for core<->scalar vmov).  Rejected:
  - any other v-mnemonic: NEON (vld1-4, vst1-4, vdup, vext, vzip, vtbl, ...),
    VFPv4 fused multiply-add (vfma, vfms, vfnma, vfnms), half precision
    (vcvtb/vcvtt, .f16), ARMv8 FP (vrint*, vsel*, vmaxnm, vminnm, vcvta/n/p/m);
  - integer/polynomial NEON data types (.i8 .s16 .u32 .p8 .64 ...);
  - VFPv3 floating-point immediates (vmov.f32/f64 Rd, #imm) and VFPv3
    fixed-point conversions (vcvt with a #fbits operand or .s16/.u16);
  - registers d16-d31 (VFPv3-D32 / NEON only) and q registers (NEON);
  - .f32 arithmetic on d registers (that is the NEON form) and a register-only
    vmov between d/q registers (objdump's name for NEON vorr).

Thumb state
  The ARM1176 runs Thumb-1: 16-bit instructions plus the 32-bit bl/blx pair.
  Any other 32-bit Thumb encoding is Thumb-2 (ARMv6T2+).  16-bit it, cbz,
  cbnz and the 0xbfxx hint space (nop/yield/wfe/... in Thumb) are ARMv6T2+ too.

Runtime-dispatched code
  A few library functions hold newer instructions behind a run-time check, and
  findings inside them are listed as allowed (more with --allow-function):
  - musl's arm atomics (static musl builds): __a_barrier_v7 and __a_cas_v7 use
    dmb and are chosen at start-up only when the CPU is not ARMv6;
    __a_gettp_cp15 reads the thread register only when the kernel reports
    HWCAP_TLS.
  - LLVM libunwind (linked by zig): Registers_arm::saveVFPv3/restoreVFPv3
    touch d16-d31 and run only when unwind info names one of those registers,
    which code built for VFPv2 (-d32) never does.
  qemu's -cpu arm1176 run of the test suite is what proves the dispatch picks
  the ARMv6 path.

Exit status: 0 clean, 1 forbidden instructions found, 2 cannot scan.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys

COND = r"(?:eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?"

ARM_RULES = [
    ("ARMv6T2", ["movw", "movt", "bfc", "bfi", "sbfx", "ubfx", "rbit", "mls",
                 "ldrht", "strht", "ldrsbt", "ldrsht"]),
    ("ARMv7", ["dmb", "dsb", "isb", "pli", "dbg", "pldw"]),
    ("integer divide (ARMv7VE/R, ARMv8)", ["sdiv", "udiv"]),
    ("ARMv7VE", ["hvc", "eret"]),
    ("ARMv8", ["lda", "ldab", "ldah", "ldaex", "ldaexb", "ldaexh", "ldaexd",
               "stl", "stlb", "stlh", "stlex", "stlexb", "stlexh", "stlexd",
               "hlt", "sevl", "crc32b", "crc32h", "crc32w", "crc32cb",
               "crc32ch", "crc32cw", "aese", "aesd", "aesmc", "aesimc",
               "sha1c", "sha1h", "sha1m", "sha1p", "sha1su0", "sha1su1",
               "sha256h", "sha256h2", "sha256su0", "sha256su1"]),
    ("ARMv6K", ["ldrexb", "ldrexh", "ldrexd", "strexb", "strexh", "strexd",
                "clrex", "yield", "wfe", "wfi", "sev", "smc"]),
]
V6K = "ARMv6K"

ARM_FORBIDDEN = {}
for _cat, _names in ARM_RULES:
    for _n in _names:
        ARM_FORBIDDEN[_n] = _cat
ARM_RE = re.compile(r"^(%s)%s$" % ("|".join(sorted(ARM_FORBIDDEN, key=len, reverse=True)), COND))

VFP2_BASES = {"vabs", "vadd", "vsub", "vmul", "vdiv", "vsqrt", "vneg", "vmla",
              "vmls", "vnmla", "vnmls", "vnmul", "vcmp", "vcmpe", "vcvt",
              "vcvtr", "vmov", "vmrs", "vmsr", "vldr", "vstr", "vldm",
              "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop"}
VFP2_RE = re.compile(r"^(%s)%s$" % ("|".join(sorted(VFP2_BASES, key=len, reverse=True)), COND))
F32_ARITH = {"vabs", "vadd", "vsub", "vmul", "vdiv", "vsqrt", "vneg", "vmla",
             "vmls", "vnmla", "vnmls", "vnmul", "vcmp", "vcmpe"}
CORE_REG = re.compile(r"\b(?:r(?:1[0-5]|[0-9])|sb|sl|fp|ip|sp|lr|pc|apsr_nzcv)\b", re.I)
DREG = re.compile(r"\bd(\d+)\b")
DRANGE = re.compile(r"\bd(\d+)\s*-\s*d(\d+)\b")
QREG = re.compile(r"\bq\d+\b")
CP15_TID = re.compile(r"^\s*(?:p)?15,\s*0,\s*\S+,\s*cr13,\s*cr0,\s*\{?[234]\}?")

DEFAULT_ALLOWED_FUNCTIONS = {
    "__a_barrier_v7": "musl: chosen at start-up only on ARMv7+ CPUs",
    "__a_cas_v7": "musl: chosen at start-up only on ARMv7+ CPUs",
    "__a_gettp_cp15": "musl: chosen at start-up only if the kernel reports HWCAP_TLS",
    "_ZN9libunwind13Registers_arm9saveVFPv3EPv": "libunwind: only for d16-d31 in unwind info",
    "_ZN9libunwind13Registers_arm12restoreVFPv3EPv": "libunwind: only for d16-d31 in unwind info",
}

LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f]{4}(?: [0-9a-f]{4})?|[0-9a-f]{8})\s*\t(\S+)(?:\t(.*))?$")
FUNC = re.compile(r"^([0-9a-f]+) <(.+)>:$")
SECTION = re.compile(r"^Disassembly of section (.+):$")


def check_vfp(mnem, ops):
    """Return a reason string if the v-instruction is not plain VFPv2."""
    parts = mnem.split(".")
    base, dtypes = parts[0], parts[1:]
    m = VFP2_RE.match(base)
    if not m:
        return "not VFPv2 (NEON, VFPv3/v4, FP16 or ARMv8 FP)"
    base = m.group(1)
    for lo, hi in DRANGE.findall(ops):
        if int(hi) >= 16 or int(lo) >= 16:
            return "d16-d31 (VFPv3-D32/NEON register)"
    for n in DREG.findall(ops):
        if int(n) >= 16:
            return "d16-d31 (VFPv3-D32/NEON register)"
    if QREG.search(ops):
        return "q register (NEON)"
    if base in ("vcvt", "vcvtr"):
        allowed = {"f32", "f64", "s32", "u32"}
    elif base == "vmov":
        allowed = {"f32", "f64", "32"}
    else:
        allowed = {"f32", "f64"}
    bad = [d for d in dtypes if d not in allowed]
    if bad:
        return "data type .%s (NEON or half precision)" % ".".join(bad)
    if base == "vmov" and dtypes and dtypes[0] in ("f32", "f64") and "#" in ops:
        return "floating-point immediate (VFPv3)"
    if base in ("vcvt", "vcvtr") and "#" in ops:
        return "fixed-point conversion (VFPv3)"
    if base == "vmov" and not dtypes and not CORE_REG.search(ops):
        return "register move between d/q registers (NEON vorr)"
    if base in F32_ARITH and dtypes == ["f32"] and DREG.search(ops):
        return ".f32 on d registers (NEON)"
    return None


def classify(mode, raw, mnem, ops):
    """Return (category, reason) for a forbidden instruction, or None."""
    mnem = mnem.lower()
    ops = (ops or "").split("@")[0]      # drop objdump's comment (addresses, values)
    if mnem.startswith("."):          # .word/.short/.byte: literal data
        return None
    if mode == "thumb":
        halves = raw.split()
        base = mnem.split(".")[0]
        if len(halves) == 2:
            if base in ("bl", "blx"):     # the Thumb-1 branch-and-link pair
                return None
            return ("Thumb-2", "32-bit Thumb encoding (ARMv6T2+)")
        h = halves[0]
        if h.startswith("bf"):
            return ("Thumb-2", "IT block or hint in Thumb (ARMv6T2+)")
        if base in ("cbz", "cbnz"):
            return ("Thumb-2", "cbz/cbnz (ARMv6T2+)")
        if mnem.startswith("v"):
            return ("Thumb-2", "VFP/NEON in Thumb state needs Thumb-2")
        return None
    # ARM state
    if raw[1:] == "320f000":
        return (V6K, "architected NOP hint (ARMv6K/ARMv6T2)")
    if mnem.startswith("v"):
        why = check_vfp(mnem, ops)
        return ("FP/SIMD beyond VFPv2", why) if why else None
    base = mnem.split(".")[0]
    m = ARM_RE.match(base)
    if m:
        cat = ARM_FORBIDDEN[m.group(1)]
        return (cat, m.group(1))
    if re.match(r"^(mrc|mcr)2?%s$" % COND, base) and CP15_TID.match(ops):
        return (V6K, "CP15 c13 thread ID register")
    return None


def find_objdump(explicit):
    if explicit:
        return explicit
    for cand in ("arm-linux-gnueabihf-objdump", "arm-none-eabi-objdump", "arm-linux-gnueabi-objdump"):
        if shutil.which(cand):
            return cand
    return None


def has_mapping_symbols(objdump, path):
    out = subprocess.run([objdump, "-t", "--special-syms", path], capture_output=True, text=True)
    if out.returncode != 0:
        return False, out.stderr.strip()
    return bool(re.search(r"\s\$[atd](?:\.\S*)?$", out.stdout, re.M)), ""


def scan(path, objdump, strict_v6, allowed_funcs, max_print):
    ok, err = has_mapping_symbols(objdump, path)
    if not ok:
        print("armv6-scan: %s: no symbol table with ARM mapping symbols (%s); "
              "scan the unstripped file" % (path, err or "stripped?"), file=sys.stderr)
        return 2
    proc = subprocess.Popen([objdump, "-d", "-w", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1 << 20)
    func, section = "?", "?"
    counts = collections.Counter()
    mode_counts = collections.Counter()
    findings = collections.defaultdict(list)
    allowed = collections.defaultdict(list)
    v6k_notes = collections.Counter()
    for line in proc.stdout:
        line = line.rstrip("\n")
        m = LINE.match(line)
        if not m:
            f = FUNC.match(line)
            if f:
                func = f.group(2)
                continue
            s = SECTION.match(line)
            if s:
                section = s.group(1)
            continue
        addr, raw, mnem, ops = m.groups()
        mode = "arm" if len(raw) == 8 else "thumb"
        mode_counts[mode] += 1
        hit = classify(mode, raw, mnem, ops)
        if not hit:
            continue
        cat, why = hit
        text = "0x%s <%s> [%s %s] %s %s -- %s" % (addr, func, section, mode, mnem, ops or "", why)
        fbase = func.split("+")[0]
        if fbase in allowed_funcs:
            allowed[cat].append(text)
            continue
        if cat == V6K and not strict_v6:
            v6k_notes[why] += 1
            continue
        counts[cat] += 1
        findings[cat].append(text)
    _, err = proc.communicate()
    if proc.returncode != 0:
        print("armv6-scan: %s: objdump failed: %s" % (path, err.strip()), file=sys.stderr)
        return 2
    total = sum(mode_counts.values())
    if total == 0:
        print("armv6-scan: %s: objdump produced no instructions" % path, file=sys.stderr)
        return 2
    name = os.path.basename(path)
    for cat, items in allowed.items():
        print("armv6-scan: %s: %d %s instruction(s) in runtime-dispatched functions (allowed): %s"
              % (name, len(items), cat, ", ".join(sorted({t.split("<")[1].split(">")[0].split("+")[0] for t in items}))))
    for why, n in v6k_notes.items():
        print("armv6-scan: %s: %d ARMv6K instruction(s), fine on the ARM1176: %s" % (name, n, why))
    if not findings:
        print("armv6-scan: OK %s: %d ARM + %d Thumb instructions, all within %s"
              % (name, mode_counts["arm"], mode_counts["thumb"], "plain ARMv6 + VFPv2" if strict_v6 else "ARM1176 (ARMv6KZ + VFPv2)"))
        return 0
    print("armv6-scan: FAIL %s: %s" % (name, ", ".join("%d %s" % (n, c) for c, n in counts.most_common())))
    for cat, items in findings.items():
        for t in items[:max_print]:
            print("  %s: %s" % (cat, t))
        if len(items) > max_print:
            print("  %s: ... %d more" % (cat, len(items) - max_print))
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="ELF executables or objects to scan")
    ap.add_argument("--objdump", help="objdump for ARM (default: arm-linux-gnueabihf-objdump)")
    ap.add_argument("--strict-armv6", action="store_true",
                    help="also reject the ARMv6K/v6Z additions the ARM1176 has (ldrexd, clrex, wfe, ...)")
    ap.add_argument("--allow-function", action="append", default=[],
                    help="function whose instructions are runtime-dispatched (repeatable)")
    ap.add_argument("--no-default-allow", action="store_true",
                    help="do not allow musl's runtime-dispatched atomics helpers")
    ap.add_argument("--max-print", type=int, default=15, help="findings printed per category")
    args = ap.parse_args()
    objdump = find_objdump(args.objdump)
    if not objdump:
        print("armv6-scan: no ARM objdump found (apt-get install binutils-arm-linux-gnueabihf)",
              file=sys.stderr)
        return 2
    allowed_funcs = set(args.allow_function)
    if not args.no_default_allow:
        allowed_funcs |= set(DEFAULT_ALLOWED_FUNCTIONS)
    worst = 0
    for f in args.files:
        if not os.path.isfile(f):
            print("armv6-scan: %s: no such file" % f, file=sys.stderr)
            worst = max(worst, 2)
            continue
        rc = scan(f, objdump, args.strict_armv6, allowed_funcs, args.max_print)
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())
