"""Regenerate ct_vectors.json: known-good RFC 6962 vectors plus corrupted variants.

Run from the repository root: ``.venv/bin/python tests/app/ledger/testdata/make_ct_vectors.py``.

The known-good values are copied from transparency-dev/merkle ``proof/verify_test.go``
(the Certificate Transparency test data, originally google/certificate-transparency):
https://github.com/transparency-dev/merkle/blob/main/proof/verify_test.go
Leaf indices there are 1-based; here they are 0-based.

The corrupted cases follow that file's ``corruptInclusionProof`` / ``corruptConsistencyProof``
mutations. Their expected error class is decided here without importing ``app.ledger``:
the expected proof lengths come from a naive recursive reading of RFC 9162 §2.1.3.1 and
§2.1.4.1, so the data does not merely echo the implementation under test.
"""

from __future__ import annotations

import json
from pathlib import Path

SOURCE = "https://github.com/transparency-dev/merkle/blob/main/proof/verify_test.go"
EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SOME_HASH = "abacaba000000000000000000000000000000000000000000060061e00123456"

LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
ROOTS = [  # root of the tree of the first i+1 leaves
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (0-based leaf index, tree size, audit path)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_path_length(m: int, n: int) -> int:
    """len(PATH(m, D[n])), RFC 9162 §2.1.3.1, by recursion."""
    if n <= 1:
        return 0
    k = _k(n)
    return 1 + (naive_path_length(m, k) if m < k else naive_path_length(m - k, n - k))


def naive_subproof_length(m: int, n: int, whole: bool) -> int:
    """len(SUBPROOF(m, D[n], b)), RFC 9162 §2.1.4.1, by recursion."""
    if m == n:
        return 0 if whole else 1
    k = _k(n)
    if m <= k:
        return 1 + naive_subproof_length(m, k, whole)
    return 1 + naive_subproof_length(m - k, n - k, False)


def flip(h: str, mask: int) -> str:
    b = bytearray.fromhex(h)
    b[0] ^= mask
    return b.hex()


def inclusion_cases() -> list[dict[str, object]]:
    cases: list[dict[str, object]] = []
    wrong_leaf = b"WrongLeaf".hex()
    for index, size, proof in INCLUSION:
        leaf = LEAVES[index]
        root = ROOTS[size - 1]

        def case(desc: str, i: int, s: int, lf: str, p: list[str], r: str, err: str | None):
            cases.append(
                {
                    "desc": desc,
                    "index": i,
                    "size": s,
                    "leaf_data": lf,
                    "leaf_hash": None,
                    "proof": p,
                    "root": r,
                    "error": err,
                }
            )

        def by_shape(i: int, s: int, n: int = len(proof)) -> str:
            if not 0 <= i < s:
                return "IndexOutOfRange"
            if naive_path_length(i, s) != n:
                return "InvalidProofLength"
            return "RootMismatch"

        case("happy path", index, size, leaf, proof, root, None)
        for desc, i in (
            ("index - 1", index - 1),
            ("index + 1", index + 1),
            ("index ^ 2", index ^ 2),
        ):
            case(desc, i, size, leaf, proof, root, by_shape(i, size))
        for desc, s in (("size * 2", size * 2), ("size // 2", size // 2)):
            case(desc, index, s, leaf, proof, root, by_shape(index, s))
        case("empty root", index, size, leaf, proof, EMPTY_ROOT, "RootMismatch")
        case("random root", index, size, leaf, proof, SOME_HASH, "RootMismatch")
        cases.append(
            {
                "desc": "wrong leaf hash length",
                "index": index,
                "size": size,
                "leaf_data": None,
                "leaf_hash": wrong_leaf,
                "proof": proof,
                "root": root,
                "error": "InvalidHashLength",
            }
        )
        case("trailing garbage", index, size, leaf, [*proof, ""], root, "InvalidProofLength")
        case("trailing root", index, size, leaf, [*proof, root], root, "InvalidProofLength")
        case("preceding garbage", index, size, leaf, ["", *proof], root, "InvalidProofLength")
        case("preceding root", index, size, leaf, [root, *proof], root, "InvalidProofLength")
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = flip(bad[j], 8)
            case(f"modified proof[{j}] bit 3", index, size, leaf, bad, root, "RootMismatch")
        if proof:
            case("removed component", index, size, leaf, proof[:-1], root, "InvalidProofLength")
        if len(proof) > 1:
            case(
                "inserted component",
                index,
                size,
                leaf,
                [proof[0], SOME_HASH, *proof[1:]],
                root,
                "InvalidProofLength",
            )
    return cases


def consistency_cases() -> list[dict[str, object]]:
    cases: list[dict[str, object]] = []
    for old, new, proof in CONSISTENCY:
        r1, r2 = ROOTS[old - 1], ROOTS[new - 1]

        def case(desc: str, s1: int, s2: int, a: str, b: str, p: list[str], err: str | None):
            cases.append(
                {
                    "desc": desc,
                    "old_size": s1,
                    "new_size": s2,
                    "old_root": a,
                    "new_root": b,
                    "proof": p,
                    "error": err,
                }
            )

        def by_shape(s1: int, s2: int, n: int = len(proof)) -> str:
            if not 0 <= s1 <= s2:
                return "InvalidTreeSize"
            want = 0 if s1 in (0, s2) else naive_subproof_length(s1, s2, True)
            return "InvalidProofLength" if want != n else "RootMismatch"

        case("happy path", old, new, r1, r2, proof, None)
        if not proof:
            case("swapped distinct roots", old, new, r1, ROOTS[old], proof, "RootMismatch")
            continue
        for desc, s1 in (("old - 1", old - 1), ("old + 1", old + 1), ("old ^ 2", old ^ 2)):
            case(desc, s1, new, r1, r2, proof, by_shape(s1, new))
        for desc, s2 in (("new * 2", new * 2), ("new // 2", new // 2)):
            case(desc, old, s2, r1, r2, proof, by_shape(old, s2))
        wrong = b"WrongRoot".hex()
        case("wrong old root length", old, new, wrong, r2, proof, "InvalidHashLength")
        case("wrong new root length", old, new, r1, wrong, proof, "InvalidHashLength")
        case("swapped roots", old, new, r2, r1, proof, "RootMismatch")
        case("random old root", old, new, SOME_HASH, r2, proof, "RootMismatch")
        case("random new root", old, new, r1, SOME_HASH, proof, "RootMismatch")
        case("empty proof", old, new, r1, r2, [], "InvalidProofLength")
        case("trailing garbage", old, new, r1, r2, [*proof, ""], "InvalidProofLength")
        case("trailing old root", old, new, r1, r2, [*proof, r1], "InvalidProofLength")
        case("trailing new root", old, new, r1, r2, [*proof, r2], "InvalidProofLength")
        case("preceding garbage", old, new, r1, r2, ["", *proof], "InvalidProofLength")
        case("preceding old root", old, new, r1, r2, [r1, *proof], "InvalidProofLength")
        case("preceding new root", old, new, r1, r2, [r2, *proof], "InvalidProofLength")
        case("preceding proof[0]", old, new, r1, r2, [proof[0], *proof], "InvalidProofLength")
        case("truncated proof", old, new, r1, r2, proof[:-1], "InvalidProofLength")
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = flip(bad[j], 16)
            case(f"modified proof[{j}] bit 4", old, new, r1, r2, bad, "RootMismatch")
    return cases


def main() -> None:
    data = {
        "source": SOURCE,
        "note": (
            "Known-good vectors from the Certificate Transparency test data as kept in "
            "transparency-dev/merkle; leaf indices 0-based; hashes hex. Corrupted cases are "
            "generated by make_ct_vectors.py; 'error' names the app.ledger.errors class "
            "expected (null: must verify)."
        ),
        "empty_root": EMPTY_ROOT,
        "leaves": LEAVES,
        "roots": ROOTS,
        "inclusion": inclusion_cases(),
        "consistency": consistency_cases(),
    }
    out = Path(__file__).with_name("ct_vectors.json")
    out.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
