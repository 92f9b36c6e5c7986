"""fickling's Python API over files, for the bench's `scanners` section.

usage: fickling_scan.py FILE...   (run with the scanners venv's Python)

fickling's CLI (`fickling --check-safety FILE`) reads a file as one pickle
stream, so it cannot read a zip: every torch.save zip, package, TorchScript
or .pt2 file is a parse error to it. Its API reads zips: this runs
`fickling.scan_zip_archive` (which scans the members named .pkl, .pickle or
.bin) on a zip and `fickling.scan_file` on anything else, both with
graceful=True, and prints one JSON line per file:
{"path", "verdict": "unsafe"|"clean"|"error"|"skipped"|"crash", "severity",
"detail"}
(severity: the highest analysis severity, LIKELY_SAFE when none).

unsafe: some pickle's analysis is above LIKELY_SAFE; error: no such
finding, but a parse or analysis error (fickling itself rates those
SUSPICIOUS); skipped: a zip with no member fickling scans; crash: fickling
raised past its graceful mode.
"""
import json
import sys
import zipfile

import fickling
from fickling.analysis import Severity


def scan(path):
    if zipfile.is_zipfile(path):
        results = fickling.scan_zip_archive(path, graceful=True)
    else:
        results = {path: fickling.scan_file(path, graceful=True)}
    if not results:
        return "skipped", "LIKELY_SAFE", "no .pkl/.pickle/.bin member in the zip"
    severity = max(
        (analysis.severity for result in results.values() for analysis in result.results),
        key=lambda severity: severity.value[0],
        default=Severity.LIKELY_SAFE,
    ).name
    unsafe = [
        f"{name}: {analysis.severity.name}"
        for name, result in results.items()
        for analysis in result.results
        if analysis.severity > Severity.LIKELY_SAFE
    ]
    if unsafe:
        return "unsafe", severity, "; ".join(unsafe)
    errors = [f"{name}: {error}" for name, result in results.items() for error in result.errors]
    if errors:
        return "error", severity, "; ".join(errors)
    return "clean", severity, ""


def main(paths):
    for path in paths:
        try:
            verdict, severity, detail = scan(path)
        except Exception as error:  # a crash of fickling on this file
            verdict, severity, detail = "crash", None, f"{type(error).__name__}: {error}"
        line = {"path": path, "verdict": verdict, "severity": severity, "detail": detail[:500]}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
