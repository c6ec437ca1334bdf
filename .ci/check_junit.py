"""Fail unless a pytest JUnit report exists, ran at least one test and has no failures.

Guards `make test` against a run that stops part-way without a non-zero exit.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(path: str) -> int:
    report = Path(path)
    if not report.is_file():
        print(f"check_junit: {report} missing: the test run did not finish", file=sys.stderr)
        return 1
    root = ET.parse(report).getroot()  # noqa: S314 - our own pytest report
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = sum(int(s.get("tests", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    print(f"check_junit: {total - skipped - bad} passed, {bad} failed, {skipped} skipped")
    if total - skipped == 0:
        print("check_junit: no test ran", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
