# ruff: noqa: RUF002 - names in other scripts are the point
"""Name matching against the lists: normalise, block, score, explain.

1. **Normalise** (:func:`.names.normalise`): NFKC; Chinese characters to pinyin syllables (``pypinyin``,
   context-aware for polyphones); every other script to Latin (``anyascii``: Cyrillic, Arabic,
   Greek, Hebrew, Hangul, kana, Thai ...); lower case; apostrophes dropped, other punctuation to
   spaces; company legal forms removed at either end of the name (``Co., Ltd``, ``Limited``,
   ``LLC``, ``GmbH``, ``JSC``, ``ООО``/``OOO``, ``有限公司`` = "you xian gong si", ...).
2. **Block** (:class:`NameIndex`): every alias is filed under keys of its tokens (the token, a
   consonant skeleton, a 4-letter prefix and suffix); a query collects aliases that share keys,
   weighted by how rare each key is, and only the best few are scored.
3. **Score** (:func:`score_tokens`): the larger of
   - a *token alignment* score: tokens paired one-to-one by similarity (Jaro-Winkler, or a
     phonetic skeleton agreeing), each side's coverage weighted by token rarity (IDF), combined
     as the harmonic mean of both coverages (so "BANK" does not match "BANK MELLI IRAN"), and
   - a *compact* score: edit similarity of the names with spaces removed, in given and in sorted
     token order (so "Xi Jin Ping" = "Xi Jinping", "Ahmadi Nejad" = "Ahmadinejad").
4. **Explain**: every match says which alias matched, which tokens agreed and how well, which
   legal forms and scripts were handled, and the score.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from geowarden.screening.bound import (
    ABJAD_COMPACT_PENALTY,
    ABJAD_PHONETIC,
    COMPACT_BIAS,
    COMPACT_MIN,
    FUZZ_STRETCH,
    MIN_TOKEN_SIM,
    PHONETIC_FLOOR,
    SHORT_PENALTY,
    AliasTable,
)
from geowarden.screening.entity import Entity
from geowarden.screening.names import GENERIC_WORDS, NAME_LIKE_FORMS, Normalised, normalise, skeleton

#: The verdict levels: ``match`` at or above MATCH (a policy may block), ``possible`` at or above
#: POSSIBLE (for a reviewer), ``none`` below. Calibrated on half A of bench/eval_screening.py.
MATCH = 0.88
POSSIBLE = 0.83
STRONG, WEAK = MATCH, POSSIBLE  # the names the evidence codes were written with
#: What a name scores at most when nothing in it agrees exactly (one fuzzy word, or sounds
#: alone): enough for a reviewer, never a match.
UNSUPPORTED_CAP = 0.87
_UNSUPPORTED_PENALTY = 0.05
_SUPPORT_SHARE = 0.5  # of the paired listed words' weight that must agree exactly
_LONG_TOKEN = 8  # a fuzzy pair on a word this long is evidence on its own (one typo in 8+ letters)

_JOINED_MIN = 90  # Indel ratio the run-together leftovers need (a typo across a join)
_TOP_CANDIDATES = 40  # aliases fully scored per query
_MAX_POSTING = 4000  # keys shared by more aliases than this are too common to block on alone


@dataclass(frozen=True, slots=True)
class TokenPair:
    query: str
    alias: str
    similarity: float
    how: str  # "=" exact, "~" edit similarity, "phonetic"


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    method: str  # "tokens" | "compact"
    pairs: tuple[TokenPair, ...]
    unmatched_query: tuple[str, ...]
    unmatched_alias: tuple[str, ...]
    token_score: float
    compact_score: float
    capped: bool = False  # held below MATCH: no exact word agreed (see _supported)


#: Orthographic similarity a pair needs before a phonetic (skeleton) agreement may lift it.
_PHONETIC_FLOOR = PHONETIC_FLOOR
#: A fuzzy (non-exact) pair's similarity is stretched away from 1 by this factor: one edit in a
#: short word is a different name as often as it is a typo, so it carries less than agreement.
_FUZZ_STRETCH = FUZZ_STRETCH
_MIN_TOKEN_SIM = MIN_TOKEN_SIM


@lru_cache(maxsize=1 << 20)
def _token_sim(a: str, b: str, abjad: bool) -> tuple[float, str]:
    """Similarity of two folded tokens and how it was reached ("=", "~", "phonetic").

    Phonetic agreement (equal consonant skeletons) is support, never evidence alone: it lifts a
    pair only when the spellings already agree to ``_PHONETIC_FLOOR`` ("gang"/"gong" and
    "zaimer"/"samir" do not), except across an abjad (Arabic, Hebrew), whose transliterations
    leave the short vowels out ("mhmd" = "mohamed")."""
    if a == b:
        return 1.0, "="
    if a.isdigit() or b.isdigit():
        return 0.0, ""
    sa, sb = skeleton(a), skeleton(b)
    if abjad and sa and sa == sb:
        return ABJAD_PHONETIC, "phonetic"
    if len(a) <= 2 or len(b) <= 2:
        return 0.0, ""
    # Jaro-Winkler rewards a shared prefix generously ("romashka" ~ "romana" 0.89); averaging it
    # with the Indel ratio keeps single typos high and different words low.
    ortho = (JaroWinkler.normalized_similarity(a, b) + fuzz.ratio(a, b) / 100) / 2
    if len(a) <= 3 or len(b) <= 3:
        ortho -= SHORT_PENALTY  # short tokens: a prefix agreeing means little
    phonetic = sa == sb and len(sa) >= 3 and ortho >= _PHONETIC_FLOOR
    if ortho < _MIN_TOKEN_SIM and not phonetic:
        return 0.0, ""
    sim = 1.0 - _FUZZ_STRETCH * (1.0 - ortho)
    if phonetic and sim < min(ortho, 0.9):
        return min(ortho, 0.9), "phonetic"  # the sounds agreeing undo the stretch, no more
    return sim, "~"


def _joined_agree(rest_q: list[str], rest_a: list[str], abjad: bool = False) -> bool:
    """Whether the tokens left after exact agreement spell the same letters once run together:
    the compact score may then stand for a join or split ("Jin Ping" = "Jinping"), never for a
    different word such as another given name ("Wang Xiang" is not "Wang Exiang")."""
    if not rest_q or not rest_a:
        return not rest_q and not rest_a
    jq, ja = "".join(rest_q), "".join(rest_a)
    if jq == ja or "".join(sorted(rest_q)) == "".join(sorted(rest_a)):
        return True
    if abjad:  # short vowels unwritten: the consonants are what there is to compare
        sq, sa = "".join(map(skeleton, rest_q)), "".join(map(skeleton, rest_a))
        return fuzz.ratio(sq, sa) >= _JOINED_MIN - 10
    return len(rest_q) != len(rest_a) and fuzz.ratio(jq, ja) >= _JOINED_MIN


def score_tokens(
    q: Normalised,
    a: Normalised,
    weight: dict[str, float] | None = None,
    default_weight: float = 1.0,
) -> Score:
    """How well alias ``a`` matches query ``q`` (0..1), with the parts that agreed."""
    qt, at = q.tokens, a.tokens
    if not qt or not at:
        return Score(0.0, "tokens", (), qt, at, 0.0, 0.0)
    w = weight or {}
    cands: list[tuple[float, int, int, str]] = []
    abjad = q.abjad or a.abjad
    syllabic = "HANGUL" in q.scripts  # see _syllables_in_order
    for i, x in enumerate(qt):
        for j, y in enumerate(at):
            s, how = (1.0, "=") if x == y else (0.0, "") if syllabic else _token_sim(x, y, abjad)
            if s > 0:
                cands.append((s, i, j, how))
    cands.sort(reverse=True)
    used_q: set[int] = set()
    used_a: set[int] = set()
    pairs: list[TokenPair] = []
    sim_q = [0.0] * len(qt)
    sim_a = [0.0] * len(at)
    for s, i, j, how in cands:
        if i in used_q or j in used_a:
            continue
        used_q.add(i)
        used_a.add(j)
        sim_q[i] = sim_a[j] = s
        pairs.append(TokenPair(qt[i], at[j], s, how))
    wq = [w.get(t, default_weight) for t in qt]
    wa = [w.get(t, default_weight) for t in at]
    cov_q = sum(x * y for x, y in zip(wq, sim_q, strict=True)) / sum(wq)
    cov_a = sum(x * y for x, y in zip(wa, sim_a, strict=True)) / sum(wa)
    token_score = 0.0 if cov_q + cov_a == 0 else 2 * cov_q * cov_a / (cov_q + cov_a)
    cq, ca = q.compact, a.compact
    compact = 0.0
    exact_q = {i for i, x in enumerate(qt) if sim_q[i] == 1.0}
    exact_a = {j for j, y in enumerate(at) if sim_a[j] == 1.0}
    rest_q = [t for i, t in enumerate(qt) if i not in exact_q]
    rest_a = [t for j, t in enumerate(at) if j not in exact_a]
    joined = "".join(rest_q) == "".join(rest_a) if syllabic else _joined_agree(rest_q, rest_a, abjad)
    if min(len(cq), len(ca)) >= COMPACT_MIN and joined:
        compact = fuzz.ratio(cq, ca) / 100
        if len(qt) > 1 or len(at) > 1:
            compact = max(compact, fuzz.ratio("".join(sorted(qt)), "".join(sorted(at))) / 100)
        if q.abjad or a.abjad:
            skq, ska = "".join(map(skeleton, qt)), "".join(map(skeleton, at))
            compact = max(compact, fuzz.ratio(skq, ska) / 100 - ABJAD_COMPACT_PENALTY)
        compact -= COMPACT_BIAS  # a slight preference for token agreement when both are close
    unmatched_q = tuple(t for i, t in enumerate(qt) if i not in used_q)
    unmatched_a = tuple(t for j, t in enumerate(at) if j not in used_a)
    method = "compact" if compact > token_score else "tokens"
    value = max(compact, token_score)
    capped = value > UNSUPPORTED_CAP and not (
        _supported(pairs, method, abjad, w, default_weight) and (not syllabic or _syllables_in_order(pairs, qt, at))
    )
    if capped:
        value = min(UNSUPPORTED_CAP, value - _UNSUPPORTED_PENALTY)
    return Score(value, method, tuple(pairs), unmatched_q, unmatched_a, token_score, compact, capped)


def _syllables_in_order(pairs: list[TokenPair], qt: tuple[str, ...], at: tuple[str, ...]) -> bool:
    """Whether a name written in Hangul met the listed words in its own order. Each Hangul
    syllable is one word of the romanised name, and it is exact or different: a different syllable
    is a different name, so fuzzy agreement is not asked for (``score_tokens``). A given name is
    its syllables in order (은정 Un Jong is not 정은 Jong Un); the surname may stand first or last."""
    order = [at.index(p.alias) for p in sorted(pairs, key=lambda p: qt.index(p.query))]
    return any(order == sorted(order) for order in (order, order[1:] + order[:1]))


def _supported(pairs: list[TokenPair], method: str, abjad: bool, w: dict[str, float], default_weight: float) -> bool:
    """Whether a name's agreement can carry a match: the words agreeing exactly (or, across an
    abjad, by their consonants; or with one typo in a word of 8+ letters) weigh at least half of
    the listed words paired, or the letters agree once joined. One short fuzzy word, sounds
    alone, or a common surname or generic word agreeing beside a different given name cannot."""
    if method == "compact":
        return True
    paired = sum(w.get(p.alias, default_weight) for p in pairs)
    strong = sum(
        w.get(p.alias, default_weight)
        for p in pairs
        if p.how == "=" or (abjad and p.how == "phonetic") or min(len(p.query), len(p.alias)) >= _LONG_TOKEN
    )
    return paired > 0 and strong >= _SUPPORT_SHARE * paired


# -- the index ---------------------------------------------------------------------------------


def _keys(tokens: Sequence[str], joined: int = 2) -> set[str]:
    """Blocking keys: each token, its skeleton, 4-letter prefix and suffix, and adjacent tokens
    run together (up to ``joined`` at a time), so "Hu Yong An" meets "HU, Yongan"."""
    out: set[str] = set()
    for n in range(2, joined + 1):
        for i in range(len(tokens) - n + 1):
            out.add("t:" + "".join(tokens[i : i + n]))
    for t in tokens:
        out.add("t:" + t)
        sk = skeleton(t)
        if len(sk) >= 2:
            out.add("s:" + sk)
        if len(t) >= 4:
            out.add("p:" + t[:4])
            out.add("x:" + t[-4:])
    return out


_INITIAL_SKIP = frozenset({"of", "and", "for", "the", "de", "du", "des", "la", "al", "el", "i", "e", "und"})
_VOWELS = frozenset("aeiou")


def _initials(tokens: Sequence[str]) -> str:
    return "".join(t[0] for t in tokens if t not in _INITIAL_SKIP)


def _is_acronym(tokens: tuple[str, ...], initials: set[str]) -> bool:
    """A one-word name that is the initials of another of the party's names ("CITC" for "Center
    for Innovation and Technology Cooperation"), or a short word without a vowel ("FDLR")."""
    if len(tokens) != 1 or tokens[0].isdigit():
        return False
    t = tokens[0]
    return t in initials or (2 <= len(t) <= 6 and not (_VOWELS & set(t)))


@dataclass(slots=True)
class Match:
    """One listed party matched by one query name."""

    entity: Entity
    alias: str  # the listed name or alias that matched
    score: float
    detail: Score
    query: Normalised
    alias_norm: Normalised
    notes: list[str] = field(default_factory=list)

    def explanation(self) -> str:
        d = self.detail
        parts: list[str] = []
        if self.alias == self.entity.name:
            parts.append(f"primary name '{self.alias}' matched")
        else:
            parts.append(f"alias '{self.alias}' of '{self.entity.name}' matched")
        agreed = ", ".join(
            f"{p.query}={p.alias}" if p.how == "=" else f"{p.query}~{p.alias} {p.similarity:.2f} ({p.how})"
            for p in d.pairs
        )
        if agreed:
            parts.append(f"tokens agreed: {agreed}")
        if d.unmatched_query:
            parts.append(f"query tokens unmatched: {' '.join(d.unmatched_query)}")
        if d.unmatched_alias:
            parts.append(f"listed tokens unmatched: {' '.join(d.unmatched_alias)}")
        forms = sorted(set(self.query.legal_forms) | set(self.alias_norm.legal_forms))
        if forms:
            parts.append(f"legal forms ignored: {', '.join(forms)}")
        if self.query.scripts:
            parts.append(f"query transliterated from {'/'.join(s.title() for s in self.query.scripts)}")
        parts.append(f"token score {d.token_score:.2f}, compact score {d.compact_score:.2f} ({d.method} used)")
        if d.capped:
            parts.append(
                f"no distinctive word agreed exactly: -{_UNSUPPORTED_PENALTY:.2f}, at most {UNSUPPORTED_CAP:.2f}"
            )
        parts.extend(self.notes)
        parts.append(f"score {self.score:.2f}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        """The DESIGN contract: ``name``, ``list``, ``score``, ``entity_id``, ``explanation``."""
        return {
            "name": self.entity.name,
            "list": self.entity.list,
            "score": round(self.score, 4),
            "entity_id": self.entity.entity_id,
            "explanation": self.explanation(),
        }


class NameIndex:
    """Every name and alias of a set of listed parties, blocked for fast candidate lookup."""

    def __init__(self, entities: Sequence[Entity]) -> None:
        self.entities: list[Entity] = list(entities)
        self._alias_entity: list[int] = []
        self._alias_text: list[str] = []
        self._alias_norm: list[Normalised] = []
        self._acronym: set[int] = set()  # alias ids that are acronyms: they match only exactly
        postings: dict[str, list[int]] = defaultdict(list)
        token_df: Counter[str] = Counter()
        for ei, ent in enumerate(self.entities):
            norms = [(name, normalise(name)) for name in ent.names()]
            initials = {_initials(n.tokens) for _, n in norms if len(n.tokens) >= 2}
            for name, norm in norms:
                if not norm.tokens:
                    continue
                ai = len(self._alias_text)
                if _is_acronym(norm.tokens, initials):
                    self._acronym.add(ai)
                self._alias_entity.append(ei)
                self._alias_text.append(name)
                self._alias_norm.append(norm)
                token_df.update(set(norm.tokens))
                for k in _keys(norm.tokens):
                    postings[k].append(ai)
        n = max(len(self._alias_text), 1)
        self._postings: dict[str, npt.NDArray[np.int32]] = {k: np.array(v, dtype=np.int32) for k, v in postings.items()}
        self._key_weight = {k: math.log(1 + n / len(v)) for k, v in self._postings.items()}
        self.token_weight: dict[str, float] = {t: math.log(1 + n / df) for t, df in token_df.items()}
        # Generic words weigh what such words typically weigh on the lists (their median IDF here),
        # never more: "energy" or "telecom" is rare in sanctions lists but not among companies.
        seen = sorted(self.token_weight[t] for t in GENERIC_WORDS if t in self.token_weight)
        self.generic_weight = seen[len(seen) // 2] if seen else math.log(1 + n)
        for t in GENERIC_WORDS | NAME_LIKE_FORMS:
            self.token_weight[t] = min(self.token_weight.get(t, self.generic_weight), self.generic_weight)
        self.unseen_weight = math.log(1 + n)
        self._table = AliasTable(self._alias_norm, self.token_weight)

    def __len__(self) -> int:
        return len(self._alias_text)

    def candidates(self, q: Normalised, limit: int = _TOP_CANDIDATES) -> list[int]:
        """Alias ids sharing the rarest keys with the query, best first."""
        keys = [k for k in _keys(q.tokens, 3) if k in self._postings]
        if q.abjad:
            keys += [k for k in {"s:" + skeleton(t) for t in q.tokens} if k in self._postings]
        rare = [k for k in keys if len(self._postings[k]) <= _MAX_POSTING]
        use = rare or keys  # an abjad query's skeleton keys count twice: its consonants are its spelling
        if not use:
            return []
        lists = [self._postings[k] for k in use]
        ids = np.concatenate(lists)
        weights = np.repeat([self._key_weight[k] for k in use], [len(v) for v in lists])
        uniq, first, inv = np.unique(ids, return_index=True, return_inverse=True)
        acc = np.bincount(inv, weights=weights)  # summed in key order, as a loop over the keys would
        if len(uniq) > limit:  # keep every alias tied with the last one kept, then break the ties
            keep = acc >= np.partition(acc, len(acc) - limit)[len(acc) - limit]
            uniq, acc, first = uniq[keep], acc[keep], first[keep]
        # Ties go to the alias met first (the order of the query's keys, then of the postings).
        order = np.lexsort((first, -acc))[:limit]
        return [int(i) for i in uniq[order]]

    def search(
        self,
        name: str,
        *,
        country: str | None = None,
        threshold: float = WEAK,
        limit: int = 10,
    ) -> list[Match]:
        """Listed parties matching ``name`` at ``threshold`` or above, best first, one per party.

        With ``country`` (ISO alpha-2) a party whose list entry names other countries only is
        marked down by 0.1 and one naming that country is noted as agreeing; the lists are
        incomplete on countries, so the country never excludes a party on its own.
        """
        return self.search_many([name], country=country, threshold=threshold, limit=limit)[0]

    def search_many(
        self,
        names: Sequence[str],
        *,
        country: str | None = None,
        threshold: float = WEAK,
        limit: int = 10,
    ) -> list[list[Match]]:
        """:meth:`search` for a batch of names, in order. The candidates of the whole batch are
        bounded at once (:mod:`.bound`) and only those that can reach ``threshold`` are scored."""
        qs = [normalise(n) for n in names]
        cands = [
            [ai for ai in self.candidates(q) if ai not in self._acronym or self._alias_norm[ai].tokens == q.tokens]
            if q.tokens
            else []
            for q in qs
        ]  # an acronym is evidence only when written exactly
        qws = [[self.token_weight.get(t, self.unseen_weight) for t in q.tokens] for q in qs]
        bounds = self._table.upper_bounds_many(qs, qws, cands)
        return [
            self._score(q, [ai for ai, b in zip(cs, bs, strict=True) if b >= threshold], country, threshold, limit)
            for q, cs, bs in zip(qs, cands, bounds, strict=True)
        ]

    def _score(self, q: Normalised, cands: list[int], country: str | None, threshold: float, limit: int) -> list[Match]:
        """The candidates scored, marked by country, kept at ``threshold``: one per party, best first."""
        best: dict[int, Match] = {}
        scored: dict[tuple[tuple[str, ...], bool], Score] = {}  # aliases that normalise alike score alike
        for ai in cands:
            a = self._alias_norm[ai]
            key = (a.tokens, a.abjad)
            sc = scored.get(key)
            if sc is None:
                sc = scored[key] = score_tokens(q, a, self.token_weight, self.unseen_weight)
            value = sc.value
            ei = self._alias_entity[ai]
            ent = self.entities[ei]
            notes: list[str] = []
            if country is not None and ent.countries:
                cc = country.upper()
                if cc in ent.countries:
                    notes.append(f"country {cc} agrees with the listing")
                else:
                    value -= 0.1
                    notes.append(f"country {cc} not among the listing's ({', '.join(ent.countries)}): -0.10")
            value = max(0.0, min(1.0, value))
            if value < threshold:
                continue
            cur = best.get(ei)
            if cur is None or value > cur.score:
                best[ei] = Match(ent, self._alias_text[ai], value, sc, q, a, notes)
        out = sorted(best.values(), key=lambda m: (-m.score, m.entity.entity_id))
        return out[:limit]
