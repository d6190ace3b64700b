# ruff: noqa: RUF002 - names in other scripts are the point
"""Names made comparable across scripts: normalise, fold spellings, consonant skeletons.

:func:`normalise`: NFKC; Chinese characters to pinyin syllables (``pypinyin``, context-aware
for polyphones); every other script to Latin (``anyascii``: Cyrillic, Arabic, Greek, Hebrew,
Hangul, kana, Thai ...); lower case; apostrophes dropped, other punctuation to spaces; company
legal forms removed at either end of the name (``Co., Ltd``, ``Limited``, ``LLC``, ``GmbH``,
``JSC``, ``ООО``/``OOO``, ``有限公司`` = "you xian gong si", ...). :func:`fold` makes the
spellings transliteration conventions swap equal, :func:`skeleton` gives a token's consonants
for phonetic comparison. Matching these names against the lists is :mod:`.match`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii
from pypinyin import lazy_pinyin
from rapidfuzz.distance import Levenshtein

# Legal forms as tokens after transliteration; multi-word forms first. Removed at either end.
_LEGAL_FORMS: tuple[tuple[str, ...], ...] = tuple(
    tuple(f.split())
    for f in sorted(
        {
            # English and international
            "co",
            "company",
            "corp",
            "corporation",
            "inc",
            "incorporated",
            "ltd",
            "limited",
            "llc",
            "llp",
            "lp",
            "plc",
            "pllc",
            "jsc",
            "ojsc",
            "pjsc",
            "cjsc",
            "oao",
            "zao",
            "pao",
            "ooo",
            "gmbh",
            "ag",
            "kg",
            "mbh",
            "sarl",
            "srl",
            "spa",
            "bv",
            "nv",
            "oy",
            "pte",
            "pty",
            "bhd",
            "sdn bhd",
            "fze",
            "fzco",
            "fzc",
            "fzllc",
            "fz llc",
            "kft",
            "sp z o o",
            "sp zoo",
            "ead",
            "ltda",
            "sas",
            "sa de cv",
            "s a",
            "s a de c v",
            "cia",
            "company limited",
            "co ltd",
            "pvt ltd",
            "private limited",
            "limited liability company",
            "limited liability partnership",
            "joint stock company",
            "open joint stock company",
            "closed joint stock company",
            "public joint stock company",
            "public company",
            "general trading",
            "trading co",
            # Russian / Ukrainian written out (after anyascii)
            "obshchestvo s ogranichennoy otvetstvennostyu",
            "aktsionernoe obshchestvo",
            "publichnoe aktsionernoe obshchestvo",
            "zakrytoe aktsionernoe obshchestvo",
            "otkrytoe aktsionernoe obshchestvo",
            "tovarystvo z obmezhenoyu vidpovidalnistyu",
            # Chinese (pinyin of 有限公司, 股份有限公司, 有限责任公司, 公司)
            "you xian gong si",
            "gu fen you xian gong si",
            "you xian ze ren gong si",
            "gong si",
            # Japanese / Korean / Arabic / Persian / Turkish
            "kabushiki kaisha",
            "kk",
            "jusikhoesa",
            "ju sik hoe sa",  # 주식회사 written syllable by syllable (romanise_hangul)
            "yu han hoe sa",  # 유한회사
            "sharikat",
            "sherkat",
            "anonim sirketi",
            "ltd sti",
            "sti",
            # articles
            "the",
        },
        key=lambda f: -len(f.split()),
    )
)
_FOLD_MULTI = (("dzh", "j"), ("kh", "h"), ("ph", "f"), ("ck", "k"), ("ks", "x"), ("ch", "\x01"))
_FOLD_ONE = str.maketrans({"c": "k", "q": "k", "w": "v", "y": "i", "\x01": "ch"})
_DOUBLE = re.compile(r"([a-z])\1+")


@lru_cache(maxsize=262144)
def fold(token: str) -> str:
    """Spellings that transliteration conventions swap, made equal: dzh/j, kh/h, ph/f, c/k/q, w/v,
    y/i, ks/x, doubled letters. Applied to every token on both sides of a comparison, so
    "Компаны" (kompany) = "company", "Хассан" (khassan) = "Hassan", "Quan" = "Kuan"."""
    if token.isdigit():
        return token
    t = token
    for a, b in _FOLD_MULTI:
        t = t.replace(a, b)
    return _DOUBLE.sub(r"\1", t.translate(_FOLD_ONE))


_LEGAL_FORMS = tuple(tuple(fold(t) for t in f) for f in _LEGAL_FORMS)
_LEGAL_FIRST: dict[str, list[tuple[str, ...]]] = defaultdict(list)
_LEGAL_LAST: dict[str, list[tuple[str, ...]]] = defaultdict(list)
for _f in _LEGAL_FORMS:
    _LEGAL_FIRST[_f[0]].append(_f)
    _LEGAL_LAST[_f[-1]].append(_f)

_LEGAL_TOKENS = frozenset(t for f in _LEGAL_FORMS for t in f if len(t) >= 5)

#: Legal-form abbreviations that are also people's names in some language (Pat; Ao, a Chinese
#: surname; Sa and Doo in Korean names; Tov in Hebrew; As): never removed, only weighted as
#: little as a generic word, so "Pat Smith" keeps "Pat" and "AO Rosatom" still meets "Rosatom".
NAME_LIKE_FORMS = frozenset(fold(w) for w in ("ao", "pat", "sa", "as", "doo", "tov"))

#: Words ordinary company names share in every industry: an agreement on them says little, so
#: they weigh no more than their median IDF on the lists (``NameIndex.generic_weight``).
GENERIC_WORDS = frozenset(
    fold(w)
    for w in """
    air airlines agro auto bank broadband capital chemical chemicals cloud com commercial
    communications construction consulting data datacenter development digital electric electronics
    energy engineering enterprise enterprises export finance financial food foods gas general global
    group grupo gruppe holding holdings hosting hotel import industrial industries industry
    insurance international internet invest investment investments it logistics management
    manufacturing marine media metal metals mining mobile motors national net network networks new
    oil online partners petro petroleum pharma pharmaceutical pharmaceuticals plus power pro
    resources security service services shipping software solutions steel supply system systems tech
    technologies technology telecom telecommunications textile textiles trading transport trust
    united web world
    """.split()  # noqa: SIM905 - a paragraph of words reads better than a column
)


@lru_cache(maxsize=65536)
def _canon(token: str) -> str:
    """A token as a legal-form word when it is one with a single typo ("limitbd" -> "limited").

    One edit only, in words of six letters or more: with two, real words become legal forms
    ("cooperation" -> "corporation", and the name loses a word)."""
    if len(token) < 6 or token in _LEGAL_TOKENS:
        return token
    for lt in _LEGAL_TOKENS:
        if abs(len(lt) - len(token)) <= 1 and Levenshtein.distance(lt, token, score_cutoff=1) <= 1:
            return lt
    return token


# Hangul syllables, romanised syllable by syllable as the UN and OFAC lists write Korean names:
# the DPRK's official system (McCune-Reischauer without diacritics: 김정은 "Kim Jong Un",
# 최룡해 "Choe Ryong Hae", 리병철 "Ri Pyong Chol", 장성택 "Jang Song Thaek"). A syllable is
# 0xAC00 + (initial * 21 + vowel) * 28 + final (The Unicode Standard, section 3.12).
_KO_INITIAL = ("k", "kk", "n", "t", "tt", "r", "m", "p", "pp", "s", "ss", "", "j", "jj", "ch", "kh", "th", "ph", "h")
_KO_VOWEL = (
    "a", "ae", "ya", "yae", "o", "e", "yo", "ye", "o", "wa", "wae",
    "oe", "yo", "u", "wo", "we", "wi", "yu", "u", "ui", "i",
)  # fmt: skip
_KO_FINAL = (
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l",
    "p", "l", "m", "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t",
)  # fmt: skip
_HANGUL = re.compile(r"[\uac00-\ud7a3]+")


def _hangul_syllable(ch: str) -> str:
    i = ord(ch) - 0xAC00
    return _KO_INITIAL[i // 588] + _KO_VOWEL[i // 28 % 21] + _KO_FINAL[i % 28]


def romanise_hangul(text: str) -> str:
    """Hangul syllables in Latin, one word per syllable as the lists write Korean names ("김정은"
    -> "Kim Jong Un"); other characters unchanged. Revised Romanization ("Gim Jeong-eun") is what
    South Korea writes, but the listed Koreans are written in the DPRK's system, so this is it."""
    return _HANGUL.sub(lambda m: " " + " ".join(map(_hangul_syllable, m.group())) + " ", text)


_ABJAD = frozenset({"ARABIC", "HEBREW", "SYRIAC"})
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_DROP = re.compile(r"['`\u2019\u02bc\u02bf\u02be]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_SYMBOLS = frozenset({"So", "Sk", "Sm", "Cs", "Co", "Cn", "Me"})


@dataclass(frozen=True, slots=True)
class Normalised:
    """A name made comparable: Latin tokens, what was removed, which scripts it came from."""

    tokens: tuple[str, ...]
    legal_forms: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()

    @property
    def compact(self) -> str:
        return "".join(self.tokens)

    @property
    def abjad(self) -> bool:
        """Written in a script that leaves short vowels out (Arabic, Hebrew): compare skeletons."""
        return any(s in _ABJAD for s in self.scripts)


def _scripts(text: str) -> tuple[str, ...]:
    found: set[str] = set()
    for ch in text:
        if ord(ch) < 0x80 or not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        word = name.split(" ", 1)[0]
        found.add("HAN" if word == "CJK" else word)
    found.discard("LATIN")
    return tuple(sorted(found))


def _is_form(tokens: list[str], form: tuple[str, ...]) -> bool:
    """Whether ``tokens`` spell the legal form ``form``: word for word (a long word may carry one
    typo, see ``_canon``), or, in a form of three words or more, with one typo in one word of
    four letters or more ("joint stoick company"): the other words vouch for it."""
    got = tuple(map(_canon, tokens))
    if got == form:
        return True
    if len(form) < 3:
        return False
    off = [(g, f) for g, f in zip(got, form, strict=True) if g != f]
    return len(off) == 1 and min(map(len, off[0])) >= 4 and Levenshtein.distance(*off[0], score_cutoff=1) <= 1


@lru_cache(maxsize=65536)
def normalise(text: str) -> Normalised:
    """Comparable Latin tokens for a name in any script (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():  # symbols (emoji, dingbats) carry no name: anyascii would spell them out
        text = "".join(" " if unicodedata.category(ch) in _SYMBOLS else ch for ch in text)
    scripts = _scripts(text) if not text.isascii() else ()
    if "HAN" in scripts and _HAN.search(text):
        text = " ".join(lazy_pinyin(text))
    if "HANGUL" in scripts:
        text = romanise_hangul(text)
    if not text.isascii():
        text = anyascii(text)
    text = _NON_ALNUM.sub(" ", _DROP.sub("", text.lower()))
    tokens = [fold(t) for t in text.split()]
    removed: list[str] = []
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        for form in _LEGAL_FIRST.get(_canon(tokens[0]), ()):
            n = len(form)
            if len(tokens) > n and _is_form(tokens[:n], form):
                removed.append(" ".join(form))
                tokens = tokens[n:]
                changed = True
                break
        if changed or len(tokens) <= 1:
            continue
        for form in _LEGAL_LAST.get(_canon(tokens[-1]), ()):
            n = len(form)
            if len(tokens) > n and _is_form(tokens[-n:], form):
                removed.append(" ".join(form))
                tokens = tokens[:-n]
                changed = True
                break
    return Normalised(tuple(tokens), tuple(removed), scripts)


_SKELETON_MAP = str.maketrans({"q": "k", "c": "k", "z": "s", "w": "v", "j": "g", "x": "ks"})


@lru_cache(maxsize=131072)
def skeleton(token: str) -> str:
    """A consonant skeleton: vowels (and y, h after a consonant) dropped, doubles collapsed,
    close consonants folded (c/q->k, z->s, w->v, j->g, ph->f). "mohammed", "muhammad" and
    Arabic "mhmd" all give "mhmd"."""
    t = token.replace("ph", "f").replace("kh", "h").replace("gh", "g").replace("th", "t").replace("dh", "d")
    t = t.replace("sh", "s").replace("ch", "k").translate(_SKELETON_MAP)
    out: list[str] = []
    for ch in t:
        if ch in "aeiouy":
            continue
        if out and out[-1] == ch:
            continue
        out.append(ch)
    return "".join(out)
