# ruff: noqa: RUF001, RUF002 - names in other scripts are the point
"""Evaluate sanctions name screening on real lists (../shared/data/sanctions) and real unlisted names.

Positives: real listed names (OFAC SDN entities and individuals, sampled with a fixed seed, plus
every SDN/UN party with a Chinese country whose name segments fully into pinyin syllables), each
turned into variants:

- ``exact``      the listed primary name as written
- ``order``      word order changed ("PUTIN, Vladimir" -> "Vladimir Putin"; entities reversed)
- ``suffix``     entities only: legal form dropped and another put on (LLC, Limited, Co., Ltd.,
                 GmbH, JSC, ООО ..., ... 有限公司)
- ``typo``       one random edit (delete, insert, substitute, transpose) in one word of >= 4 letters
- ``cyrillic``   the name written in Cyrillic by Russian transliteration rules (h -> х, w -> в ...)
- ``chinese``    pinyin names written back in Chinese characters (one unambiguous character per
                 syllable, from pypinyin's dictionary): the "pinyin reverse"

A variant is *found* when the listed party is among the matches scoring at or above the
threshold. The listed parties are split in two halves by a hash of their id.

Negatives: three families of real unlisted names (``screening_negatives.py``: people's names in
17 locales, stock-index companies, ASN organisation names), each split A / B by held-out group
(locales, indices); a negative is a *false hit* when anything matches at or above the threshold.
Every figure is given for half A and half B side by side, at the ``match`` and ``possible``
thresholds and at the thresholds calibrated on half A alone (the lowest with <= 0.5 % and <= 2 %
false hits in every family of half A). Only half A's top false hits are printed.

Baselines (``--baselines``; no normalisation beyond ``rapidfuzz.utils.default_process``, brute
force over every listed name and alias): plain Jaro-Winkler (Watchman's default scorer) and
plain token-set ratio.

Also: the Watchman cross-script pairs (pairwise scores), throughput (names/s against the full
SDN + consolidated + UN + DPL + CSL lists) and index build time.

    python bench/eval_screening.py             # ~30 s
    python bench/eval_screening.py --json
    python bench/eval_screening.py --per-locale 100 --asn 2000 --baselines
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pypinyin import lazy_pinyin
from pypinyin.pinyin_dict import pinyin_dict
from rapidfuzz import fuzz, process, utils
from rapidfuzz.distance import JaroWinkler
from screening_negatives import Negative, asn_orgs, companies, exclude_listed, people

from geowarden.screening.entity import Entity
from geowarden.screening.lists import load_directory
from geowarden.screening.match import MATCH, POSSIBLE, UNSUPPORTED_CAP, NameIndex, score_tokens
from geowarden.screening.names import normalise

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CHINA = {"CN", "HK", "MO", "TW"}

# -- variants ----------------------------------------------------------------------------------

_CYR_MULTI = [
    ("shch", "щ"),
    ("kh", "х"),
    ("zh", "ж"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("ts", "ц"),
    ("yu", "ю"),
    ("ya", "я"),
    ("yo", "ё"),
    ("iy", "ий"),
]
_CYR_ONE = dict(
    zip(
        "abvgdezijklmnoprstufhcqwx",
        [
            "а",
            "б",
            "в",
            "г",
            "д",
            "е",
            "з",
            "и",
            "дж",
            "к",
            "л",
            "м",
            "н",
            "о",
            "п",
            "р",
            "с",
            "т",
            "у",
            "ф",
            "х",
            "к",
            "к",
            "в",
            "кс",
        ],
        strict=True,
    )
)


def to_cyrillic(name: str) -> str:
    out: list[str] = []
    s = name.lower()
    i = 0
    while i < len(s):
        for lat, cyr in _CYR_MULTI:
            if s.startswith(lat, i):
                out.append(cyr)
                i += len(lat)
                break
        else:
            ch = s[i]
            if ch == "y":
                out.append("й" if out and out[-1] in "аеиоуэюяё" else "ы")
            else:
                out.append(_CYR_ONE.get(ch, ch))
            i += 1
    return "".join(out).title()


def _pinyin_tables() -> tuple[set[str], dict[str, str]]:
    """Toneless syllables, and for each one Chinese character read only that way."""
    import unicodedata  # noqa: PLC0415

    syllables: set[str] = set()
    char_for: dict[str, str] = {}
    for cp, readings in sorted(pinyin_dict.items()):
        rs = {
            "".join(c for c in unicodedata.normalize("NFD", r) if not unicodedata.combining(c)).replace("ü", "v")
            for r in readings.split(",")
        }
        syllables |= rs
        if len(rs) == 1 and 0x4E00 <= cp <= 0x9FFF:
            (r,) = rs
            ch = chr(cp)
            if r not in char_for and lazy_pinyin(ch) == [r]:
                char_for[r] = ch
    return syllables, char_for


def _segment(token: str, syllables: set[str]) -> list[str] | None:
    if not token:
        return []
    for n in range(min(6, len(token)), 0, -1):
        head = token[:n]
        if head in syllables:
            rest = _segment(token[n:], syllables)
            if rest is not None:
                return [head, *rest]
    return None


def to_chinese(name: str, syllables: set[str], char_for: dict[str, str]) -> str | None:
    legal = {"co", "ltd", "limited", "company", "corp", "corporation", "inc", "llc", "group"}
    tokens = [t for t in re.findall(r"[a-z]+", name.lower()) if t not in legal]
    if not tokens:
        return None
    chars: list[str] = []
    for t in tokens:
        seg = _segment(t, syllables)
        if seg is None or any(s not in char_for for s in seg):
            return None
        chars.extend(char_for[s] for s in seg)
    return "".join(chars) if len(chars) >= 2 else None


def word_order(e: Entity) -> str | None:
    if "," in e.name and e.kind == "individual":
        last, first = e.name.split(",", 1)
        return f"{first.strip()} {last.strip()}"
    toks = normalise(e.name).tokens
    return " ".join(reversed(toks)) if len(toks) >= 2 else None


_SUFFIXES = ["{} LLC", "{} Limited", "{} Co., Ltd.", "{} GmbH", "{} JSC", "ООО {}", "{} 有限公司", "{} Inc."]


def suffix_change(e: Entity, rng: random.Random) -> str | None:
    if e.kind != "entity":
        return None
    core = " ".join(normalise(e.name).tokens).upper()
    return rng.choice(_SUFFIXES).format(core) if core else None


def typo(name: str, rng: random.Random) -> str | None:
    words = name.split()
    idx = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 4]
    if not idx:
        return None
    i = rng.choice(idx)
    w = words[i]
    pos = [k for k, c in enumerate(w) if c.isalpha()]
    k = rng.choice(pos)
    op = rng.choice(["del", "ins", "sub", "swap"])
    letters = "abcdefghijklmnopqrstuvwxyz"
    if op == "del":
        w = w[:k] + w[k + 1 :]
    elif op == "ins":
        w = w[:k] + rng.choice(letters) + w[k:]
    elif op == "sub":
        w = w[:k] + rng.choice(letters.replace(w[k].lower(), "")) + w[k + 1 :]
    elif k + 1 < len(w):
        w = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
    else:
        w = w[: k - 1] + w[k] + w[k - 1]
    words[i] = w
    return " ".join(words)


def build_cases(entities: list[Entity], n_ent: int, n_ind: int, seed: int) -> list[tuple[str, str, str]]:
    """(variant kind, query, expected entity id)."""
    rng = random.Random(seed)
    sdn = [e for e in entities if e.list == "OFAC SDN"]
    ents = rng.sample([e for e in sdn if e.kind == "entity"], n_ent)
    inds = rng.sample([e for e in sdn if e.kind == "individual"], n_ind)
    cases: list[tuple[str, str, str]] = []
    for e in ents + inds:
        cases.append(("exact", e.name, e.entity_id))
        for kind, v in (
            ("order", word_order(e)),
            ("suffix", suffix_change(e, rng)),
            ("typo", typo(e.name, rng)),
            ("cyrillic", to_cyrillic(e.name)),
        ):
            if v:
                cases.append((kind, v, e.entity_id))
    syllables, char_for = _pinyin_tables()
    # Individuals only: English words in company names ("MARINE") also segment into syllables
    # (ma-ri-ne), and writing them in characters would test nothing real.
    chinese = [
        e
        for e in entities
        if e.list in ("OFAC SDN", "UN Consolidated") and e.kind == "individual" and CHINA & set(e.countries)
    ]
    for e in chinese:
        v = to_chinese(e.name, syllables, char_for)
        if v:
            cases.append(("chinese", v, e.entity_id))
    return cases


# -- negatives and halves ----------------------------------------------------------------------


def half_of(entity_id: str) -> str:
    """Listed parties are split in two by a hash of their id: A to tune on, B to report."""
    return "A" if hashlib.sha1(entity_id.encode()).digest()[0] % 2 else "B"


def load_negatives(
    entities: list[Entity], per_locale: int, n_asn: int, seed: int
) -> tuple[list[Negative], dict[str, Any]]:
    listed = {tuple(sorted(normalise(nm).tokens)) for e in entities for nm in e.names()}
    raw = [
        *people(per_locale, seed),
        *companies(),
        *asn_orgs(SHARED / "ip" / "dbip-asn-lite.mmdb", n_asn, seed),
    ]
    kept, dropped = exclude_listed(raw, listed, lambda n: tuple(sorted(normalise(n).tokens)))
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for neg, why in dropped:
        reasons[neg.family][why] += 1
    stats = {
        "excluded": {f: dict(r) for f, r in reasons.items()},
        "excluded_examples": [f"{n.family}: {n.name!r} ({why})" for n, why in dropped if n.family != "people"][:20],
    }
    return kept, stats


# -- scoring -----------------------------------------------------------------------------------


def ours(
    index: NameIndex, queries: list[str], expected: list[str | None]
) -> tuple[np.ndarray, np.ndarray, list[str], float]:
    """Per query: the expected party's score (0 when not returned), the best score of any, and
    the best match's listed name."""
    exp_score = np.zeros(len(queries))
    best = np.zeros(len(queries))
    best_name = [""] * len(queries)
    t0 = time.perf_counter()
    found = [
        m
        for start in range(0, len(queries), 256)
        for m in index.search_many(queries[start : start + 256], threshold=0.5, limit=20)
    ]
    for i, (ms, want) in enumerate(zip(found, expected, strict=True)):
        if ms:
            best[i] = ms[0].score
            best_name[i] = f"{ms[0].alias} [{ms[0].entity.entity_id}]"
        for m in ms:
            if m.entity.entity_id == want:
                exp_score[i] = m.score
                break
    return exp_score, best, best_name, time.perf_counter() - t0


def baseline(
    scorer: Any,
    alias_texts: list[str],
    alias_entity: np.ndarray,
    ids: list[str],
    queries: list[str],
    expected: list[str | None],
) -> tuple[np.ndarray, np.ndarray]:
    choices = [utils.default_process(a) for a in alias_texts]
    cols_of: dict[str, np.ndarray] = {}
    by_ent: dict[int, list[int]] = defaultdict(list)
    for col, ei in enumerate(alias_entity):
        by_ent[int(ei)].append(col)
    id_to_ei = {eid: i for i, eid in enumerate(ids)}
    exp_score = np.zeros(len(queries))
    best = np.zeros(len(queries))
    step = 400
    for start in range(0, len(queries), step):
        qs = [utils.default_process(q) for q in queries[start : start + step]]
        m = process.cdist(qs, choices, scorer=scorer, dtype=np.float32, workers=-1)
        best[start : start + len(qs)] = m.max(axis=1)
        for r in range(len(qs)):
            want = expected[start + r]
            if want is None:
                continue
            if want not in cols_of:
                cols_of[want] = np.array(by_ent[id_to_ei[want]])
            exp_score[start + r] = m[r, cols_of[want]].max()
    scale = 100.0 if scorer is fuzz.token_set_ratio else 1.0
    return exp_score / scale, best / scale


def calibrate(fams_a: dict[str, np.ndarray], target: float, floor: float = 0.50) -> float:
    """The lowest threshold (0.01 steps, above ``floor``) with at most ``target`` false hits in
    *every* family's half A."""
    for t in np.arange(floor + 0.01, 1.0001, 0.01):
        if all(float(np.mean(v >= t - 1e-9)) <= target for v in fams_a.values() if len(v)):
            return round(float(t), 2)
    return 1.0


def recall(kinds: list[str], exp: np.ndarray, t: float) -> dict[str, Any]:
    found = exp >= t - 1e-9
    per = {}
    for k in sorted(set(kinds)):
        mask = np.array([x == k for x in kinds])
        per[k] = {"n": int(mask.sum()), "recall": round(float(found[mask].mean()), 4)}
    return {"n": len(kinds), "recall": round(float(found.mean()), 4) if len(kinds) else 0.0, "by_variant": per}


def false_hits(best: np.ndarray, t: float) -> float:
    return round(float(np.mean(best >= t - 1e-9)), 4) if len(best) else 0.0


def split_report(
    thresholds: dict[str, float],
    kinds: list[str],
    exp: np.ndarray,
    halves: np.ndarray,
    fams: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    """Recall on list variants and false hits per family, at each threshold, A and B side by side."""
    out: dict[str, Any] = {}
    for level, t in thresholds.items():
        row: dict[str, Any] = {"threshold": t}
        for h in ("A", "B"):
            mask = halves == h
            row[h] = {
                "variants": recall([k for k, m in zip(kinds, mask, strict=True) if m], exp[mask], t),
                "false_hits": {f: false_hits(v[h], t) for f, v in fams.items()},
            }
        out[level] = row
    return out


def cross_script(index: NameIndex) -> list[dict[str, Any]]:
    path = SHARED / "sanctions" / "tests" / "watchman_cross_script_pairs.csv"
    out = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.reader(line for line in fh if line.strip() and not line.startswith("#")):
            q, want, minimum = row[0], row[1], float(row[2])
            ours_s = score_tokens(normalise(q), normalise(want), index.token_weight, index.unseen_weight).value
            jw = JaroWinkler.normalized_similarity(utils.default_process(q), utils.default_process(want))
            ts = fuzz.token_set_ratio(q, want, processor=utils.default_process) / 100
            out.append(
                {
                    "query": q,
                    "expected": want,
                    "watchman_min": minimum,
                    "ours": round(ours_s, 3),
                    "jaro_winkler": round(jw, 3),
                    "token_set": round(ts, 3),
                }
            )
    return out


def _print(result: dict[str, Any]) -> None:
    print(f"lists: {result['lists']['entities']} parties, {result['lists']['names_and_aliases']} names and aliases")
    print(f"build: parse {result['build_seconds']['parse']} s, index {result['build_seconds']['index']} s")
    print(f"throughput: {result['throughput_names_per_s']} names/s")
    print(f"negatives: {result['negatives']['n']}; excluded as listed: {result['negatives']['excluded']}")
    for label in ("ours", "jaro_winkler", "token_set"):
        if label not in result:
            continue
        for level, row in result[label].items():
            if level == "top_false_hits_A":
                continue
            a, b = row["A"], row["B"]
            fh = ", ".join(
                f"{f} {a['false_hits'][f] * 100:.2f}/{b['false_hits'][f] * 100:.2f}" for f in a["false_hits"]
            )
            print(
                f"{label:12s} {level:9s} t={row['threshold']:.2f} | variants recall A/B "
                f"{a['variants']['recall'] * 100:.2f}/{b['variants']['recall'] * 100:.2f} % | false hits A/B % {fh}"
            )
            by = ", ".join(
                f"{k} {a['variants']['by_variant'][k]['recall'] * 100:.1f}/{v['recall'] * 100:.1f}"
                for k, v in b["variants"]["by_variant"].items()
            )
            print(f"{'':12s} {'':9s}   by variant A/B: {by}")
    print("top false hits on half A (ours; half B is never looked at for tuning):")
    for fam, hits in result["ours"]["top_false_hits_A"].items():
        for h in hits:
            print(f"  {fam:9s} {h['score']:.3f}  {h['query']!r} -> {h['listed']}")
    print("cross-script pairs (ours / JW / token-set, watchman min):")
    for p in result["cross_script_pairs"]:
        print(
            f"  {p['query']} -> {p['expected']}: {p['ours']} / {p['jaro_winkler']} / {p['token_set']} "
            f"({p['watchman_min']})"
        )


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one report, top to bottom
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("GEOWARDEN_SCREENING_DATA", SHARED / "sanctions")))
    ap.add_argument("--entities", type=int, default=500)
    ap.add_argument("--individuals", type=int, default=500)
    ap.add_argument("--per-locale", type=int, default=300, help="Faker names per locale (17 locales)")
    ap.add_argument("--asn", type=int, default=4000, help="ASN organisation names")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--baselines", action="store_true", help="also plain Jaro-Winkler and token-set (slow)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    entities, reports = load_directory(args.data)
    t1 = time.perf_counter()
    index = NameIndex(entities)
    t2 = time.perf_counter()

    cases = build_cases(entities, args.entities, args.individuals, args.seed)
    negs, neg_stats = load_negatives(entities, args.per_locale, args.asn, args.seed)
    kinds = [c[0] for c in cases]
    pos_q = [c[1] for c in cases]
    pos_e: list[str | None] = [c[2] for c in cases]
    halves = np.array([half_of(c[2]) for c in cases])
    neg_q = [n.name for n in negs]

    exp, _best_pos, _, t_pos = ours(index, pos_q, pos_e)
    _, neg_best, neg_name, t_neg = ours(index, neg_q, [None] * len(negs))
    families = sorted({n.family for n in negs})

    def by_family(best: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        return {
            f: {h: best[[i for i, n in enumerate(negs) if n.family == f and n.half == h]] for h in ("A", "B")}
            for f in families
        }

    fams = by_family(neg_best)
    counts = {f: {h: len(v[h]) for h in ("A", "B")} for f, v in fams.items()}
    result: dict[str, Any] = {
        "lists": {
            "entities": len(entities),
            "names_and_aliases": len(index),
            "reports": [r.to_dict() for r in reports],
        },
        "build_seconds": {"parse": round(t1 - t0, 3), "index": round(t2 - t1, 3)},
        "throughput_names_per_s": {
            "positives": round(len(pos_q) / t_pos, 1),
            "negatives": round(len(negs) / t_neg, 1),
            "all": round((len(pos_q) + len(negs)) / (t_pos + t_neg), 1),
        },
        "cases": {"A": int((halves == "A").sum()), "B": int((halves == "B").sum())},
        "negatives": {"n": len(negs), "per_family": counts, **neg_stats},
    }
    fams_a = {f: v["A"] for f, v in fams.items()}
    # A match must lie above what a name without distinctive exact agreement can score (by design
    # such a name is for review), so the match threshold is searched above that cap.
    cal = {"match": calibrate(fams_a, 0.005, UNSUPPORTED_CAP), "possible": calibrate(fams_a, 0.02)}
    result["calibrated_on_A"] = cal
    result["ours"] = split_report({"match": MATCH, "possible": POSSIBLE}, kinds, exp, halves, fams)
    result["ours"] |= {f"{k}_calibrated": v for k, v in split_report(cal, kinds, exp, halves, fams).items()}
    top: dict[str, list[dict[str, Any]]] = {}
    for f in families:
        idx_a = [i for i, n in enumerate(negs) if n.family == f and n.half == "A"]
        idx_a.sort(key=lambda i: -neg_best[i])
        top[f] = [
            {"query": neg_q[i], "score": round(float(neg_best[i]), 3), "listed": neg_name[i]}
            for i in idx_a[:12]
            if neg_best[i] >= POSSIBLE
        ]
    result["ours"]["top_false_hits_A"] = top
    if args.baselines:
        alias_texts = index._alias_text  # the bench reads the index's columns
        alias_entity = np.array(index._alias_entity)
        ids = [e.entity_id for e in index.entities]
        for label, scorer in (("jaro_winkler", JaroWinkler.normalized_similarity), ("token_set", fuzz.token_set_ratio)):
            e_b, _ = baseline(scorer, alias_texts, alias_entity, ids, pos_q, pos_e)
            _, n_b = baseline(scorer, alias_texts, alias_entity, ids, neg_q, [None] * len(negs))
            bf = by_family(n_b)
            bcal = calibrate({f: v["A"] for f, v in bf.items()}, 0.005)
            result[label] = split_report({"match_calibrated": bcal}, kinds, e_b, halves, bf)
    result["cross_script_pairs"] = cross_script(index)

    if args.json:
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
