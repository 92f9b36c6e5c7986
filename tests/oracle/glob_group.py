"""Oracle: PyTorch's own GlobGroup on many patterns and names.

stdin: JSON {"cases": [{"include": [...], "exclude": [...], "separator": "." | "/",
                        "names": [...]}]}
stdout: JSON list, per case: {"error": str} if GlobGroup() raised, else
        {"str": str(group), "matches": [bool per name]}
"""
import json
import sys

from torch.package.glob_group import GlobGroup


def main():
    request = json.load(sys.stdin)
    out = []
    for case in request["cases"]:
        try:
            group = GlobGroup(case["include"], exclude=case["exclude"], separator=case["separator"])
        except ValueError as error:
            out.append({"error": str(error)})
            continue
        out.append({"str": str(group), "matches": [group.matches(n) for n in case["names"]]})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
