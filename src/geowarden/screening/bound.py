"""Upper bounds of :func:`.match.score_tokens` for many listed names at once, to skip the hopeless.

A query meets some forty candidate names from the index's blocking; most of them cannot reach
the threshold, and scoring each in Python (pairing tokens, the compact score, the support rule)
is the cost of screening. :class:`AliasTable` keeps the listed names' tokens as arrays, and
:meth:`AliasTable.upper_bounds` computes for every candidate at once, with ``rapidfuzz``'s
``process.cdist`` and numpy, a score no lower than the one ``score_tokens`` would give:

- the token similarity matrix of the query's words against every distinct word of the candidates,
  by the same rule as ``match._token_sim`` (exact, abjad skeleton, Jaro-Winkler and Indel
  averaged, the short-word discount, the stretch, the phonetic floor);
- each side's coverage with every word taking its *best* partner (the one-to-one pairing can only
  do worse), combined by the harmonic mean as ``score_tokens`` does;
- the compact score without its gate (the leftovers agreeing once joined), which only lowers it.

The support cap and the country mark only lower a score, so a candidate whose bound is under the
threshold is dropped without changing any answer: the bound is exact pruning, not a heuristic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from geowarden.screening.names import Normalised, skeleton

FloatArray = npt.NDArray[np.float64]

# The constants of match._token_sim and match.score_tokens (match imports them from here).
MIN_TOKEN_SIM = 0.80  # token pairs below this count as not agreeing
PHONETIC_FLOOR = 0.75  # orthographic similarity a pair needs before sounds agreeing may lift it
FUZZ_STRETCH = 1.6  # a fuzzy pair's distance from 1 is stretched by this factor
SHORT_PENALTY = 0.08  # taken from the orthographic similarity when a word has 3 letters or fewer
ABJAD_PHONETIC = 0.92  # two words agreeing by consonants across an abjad
COMPACT_MIN = 6  # letters both names need before the compact score applies
COMPACT_BIAS = 0.03  # the compact score's slight handicap against token agreement
ABJAD_COMPACT_PENALTY = 0.05
_SLACK = 1e-6  # summation order differs from score_tokens': never prune on a rounding error


class AliasTable:
    """The listed names' tokens, weights and joined forms as flat arrays, by alias id."""

    def __init__(self, norms: Sequence[Normalised], weight: dict[str, float]) -> None:
        vocab: dict[str, int] = {}
        tok: list[int] = []
        wt: list[float] = []
        for n in norms:
            for t in n.tokens:
                tok.append(vocab.setdefault(t, len(vocab)))
                wt.append(weight[t])
        self.ntok = np.array([len(n.tokens) for n in norms], dtype=np.intp)
        self.start = np.cumsum(self.ntok) - self.ntok  # alias id -> its first word in tok/wt
        self.tok = np.array(tok, dtype=np.intp)
        self.wt = np.array(wt, dtype=np.float64)
        self.wsum = np.add.reduceat(self.wt, self.start) if tok else np.zeros(len(norms))
        self.vocab = vocab
        self.words: list[str] = list(vocab)
        self.word_arr = np.array(self.words, dtype=object)
        skels = [skeleton(t) for t in self.words]
        self.skel_ids: dict[str, int] = {}
        self.skel = np.array([self.skel_ids.setdefault(k, len(self.skel_ids)) for k in skels], dtype=np.intp)
        self.skel_len = np.array([len(k) for k in skels])
        self.word_len = np.array([len(t) for t in self.words])
        self.digit = np.array([t.isdigit() for t in self.words], dtype=bool)
        self.compact: list[str] = [n.compact for n in norms]
        self.compact_len = np.array([len(c) for c in self.compact])
        self.sorted_compact: list[str] = ["".join(sorted(n.tokens)) for n in norms]
        self.skel_compact: list[str] = ["".join(map(skeleton, n.tokens)) for n in norms]
        self.abjad = np.array([n.abjad for n in norms], dtype=bool)

    def token_sims(
        self, qtok: Sequence[str], pair_q: npt.NDArray[np.intp], words: npt.NDArray[np.intp]
    ) -> tuple[FloatArray, FloatArray]:
        """``match._token_sim`` for the pairs (query word ``qtok[pair_q[i]]``, listed word
        ``words[i]``) as two flat arrays: without and with the abjad rule (consonants agreeing)."""
        q = np.array(qtok, dtype=object)[pair_q]
        texts = self.word_arr[words]
        ratio = process.cpdist(q, texts, scorer=fuzz.ratio, dtype=np.float64) / 100
        # ortho = (jw + ratio) / 2 reaches PHONETIC_FLOOR only with ratio >= 2 * floor - 1:
        # Jaro-Winkler is computed for those pairs alone.
        near = np.flatnonzero(ratio >= 2 * PHONETIC_FLOOR - 1)
        jw = np.zeros_like(ratio)
        if len(near):
            jw[near] = process.cpdist(q[near], texts[near], scorer=JaroWinkler.normalized_similarity, dtype=np.float64)
        qlen = np.array([len(t) for t in qtok])[pair_q]
        wlen = self.word_len[words]
        ortho = (jw + ratio) / 2 - SHORT_PENALTY * ((qlen <= 3) | (wlen <= 3))
        same_sk = self.skel[words] == np.array([self.skel_ids.get(skeleton(t), -1) for t in qtok])[pair_q]
        sk_len = self.skel_len[words]
        phonetic = same_sk & (sk_len >= 3) & (ortho >= PHONETIC_FLOOR)
        sim = np.where(ortho >= MIN_TOKEN_SIM, 1.0 - FUZZ_STRETCH * (1.0 - ortho), 0.0)
        sim = np.where(phonetic, np.maximum(sim, np.minimum(ortho, 0.9)), sim)
        sim[(qlen <= 2) | (wlen <= 2)] = 0.0
        abjad = np.where(same_sk & (sk_len > 0), ABJAD_PHONETIC, sim)
        digit = np.array([t.isdigit() for t in qtok], dtype=bool)[pair_q] | self.digit[words]
        exact = np.array([self.vocab.get(t, -2) for t in qtok])[pair_q] == words
        for arr in (sim, abjad):
            arr[digit] = 0.0
            arr[exact] = 1.0
        return sim, abjad

    def upper_bounds(self, q: Normalised, qw: Sequence[float], cands: Sequence[int]) -> FloatArray:
        """A score no lower than ``score_tokens(q, alias)`` for every candidate alias id."""
        return self.upper_bounds_many([q], [qw], [cands])[0]

    def upper_bounds_many(
        self, qs: Sequence[Normalised], qws: Sequence[Sequence[float]], cands: Sequence[Sequence[int]]
    ) -> list[FloatArray]:
        """:meth:`upper_bounds` for a batch of queries, in one vectorised pass over the batch.

        Flat layout: every candidate's words are *cells*; the distinct (query, listed word) pairs
        are compared once with every query word (``token_sims``); a cell's best query word gives
        the listed side's coverage, a query word's best cell per candidate the query side's."""
        m = np.array([len(q.tokens) for q in qs], dtype=np.intp)
        ncand = np.array([len(c) for c in cands], dtype=np.intp)
        ids = np.fromiter((ai for c in cands for ai in c), dtype=np.intp, count=int(ncand.sum()))
        splits = np.cumsum(ncand)[:-1]
        if not len(ids):
            return [np.zeros(n) for n in ncand]
        cand_q = np.repeat(np.arange(len(qs)), ncand)  # candidate -> its query
        cand_m = m[cand_q]
        length = self.ntok[ids]
        cell_start = np.cumsum(length) - length  # candidate -> its first cell
        cell_cand = np.repeat(np.arange(len(ids)), length)
        cells = self.start[ids][cell_cand] + np.arange(len(cell_cand)) - cell_start[cell_cand]
        cell_word = self.tok[cells]
        # the distinct (query, word) pairs, each compared with every word of its query
        key = cand_q[cell_cand] * len(self.words) + cell_word
        ukey, cell_u = np.unique(key, return_inverse=True)
        u_q, u_word = ukey // len(self.words), ukey % len(self.words)
        u_m = m[u_q]
        u_start = np.cumsum(u_m) - u_m
        pair_u = np.repeat(np.arange(len(ukey)), u_m)
        pair_i = np.arange(len(pair_u)) - u_start[pair_u]
        qtok = [t for q in qs for t in q.tokens]
        q_first = np.cumsum(m) - m
        sim, sim_ab = self.token_sims(qtok, q_first[u_q][pair_u] + pair_i, u_word[pair_u])
        cand_ab = self.abjad[ids] | np.array([q.abjad for q in qs], dtype=bool)[cand_q]
        # listed side: each cell's best query word, weighted, summed per candidate
        col = np.maximum.reduceat(sim, u_start)
        col_ab = np.maximum.reduceat(sim_ab, u_start)
        cell_best = np.where(cand_ab[cell_cand], col_ab[cell_u], col[cell_u])
        cov_a = np.add.reduceat(cell_best * self.wt[cells], cell_start) / self.wsum[ids]
        # query side: per candidate and query word, the best cell; expanded (candidate, word, cell)
        span = length * cand_m
        e_start = np.cumsum(span) - span
        e_cand = np.repeat(np.arange(len(ids)), span)
        pos = np.arange(len(e_cand)) - e_start[e_cand]
        e_len = length[e_cand]
        e_i, e_slot = pos // e_len, pos % e_len
        e_pair = u_start[cell_u[cell_start[e_cand] + e_slot]] + e_i
        e_sim = np.where(cand_ab[e_cand], sim_ab[e_pair], sim[e_pair])
        row_start = np.flatnonzero(e_slot == 0)  # one per (candidate, query word), in that order
        row = np.maximum.reduceat(e_sim, row_start)
        qw = np.fromiter((w for ws in qws for w in ws), dtype=np.float64, count=len(qtok))
        row_w = qw[q_first[cand_q][e_cand[row_start]] + e_i[row_start]]
        qwsum = np.add.reduceat(qw, q_first[m > 0])
        qwsum_of = np.zeros(len(qs))
        qwsum_of[m > 0] = qwsum
        cov_q = np.add.reduceat(row * row_w, np.cumsum(cand_m) - cand_m) / qwsum_of[cand_q]
        total = cov_q + cov_a
        token = np.divide(2 * cov_q * cov_a, total, out=np.zeros_like(total), where=total > 0)
        bound = np.maximum(token, self._compact_bounds(qs, ids, cand_q)) + _SLACK
        return np.split(bound, splits)

    def _compact_bounds(
        self, qs: Sequence[Normalised], ids: npt.NDArray[np.intp], cand_q: npt.NDArray[np.intp]
    ) -> FloatArray:
        """The compact score of every candidate, without the joined-leftovers gate."""
        out = np.zeros(len(ids))
        qlen = np.array([len(q.compact) for q in qs])
        ok = np.flatnonzero((self.compact_len[ids] >= COMPACT_MIN) & (qlen[cand_q] >= COMPACT_MIN))
        if not len(ok):
            return out
        pick = ids[ok].tolist()
        which = cand_q[ok].tolist()
        cq = [q.compact for q in qs]
        sq = ["".join(sorted(q.tokens)) for q in qs]
        best = np.maximum(
            process.cpdist(
                [cq[b] for b in which], [self.compact[i] for i in pick], scorer=fuzz.ratio, dtype=np.float64
            ),
            process.cpdist(
                [sq[b] for b in which], [self.sorted_compact[i] for i in pick], scorer=fuzz.ratio, dtype=np.float64
            ),
        )
        ab = np.flatnonzero(self.abjad[ids[ok]] | np.array([qs[b].abjad for b in which], dtype=bool))
        if len(ab):
            kq = ["".join(map(skeleton, q.tokens)) for q in qs]
            sk = process.cpdist(
                [kq[which[i]] for i in ab.tolist()],
                [self.skel_compact[pick[i]] for i in ab.tolist()],
                scorer=fuzz.ratio,
                dtype=np.float64,
            )
            best[ab] = np.maximum(best[ab], sk - 100 * ABJAD_COMPACT_PENALTY)
        out[ok] = best / 100 - COMPACT_BIAS
        return out
