"""The recommender's signals for a date, from matrices (no I/O): what ``HybridRecommender`` blends.

For a date D the candidates are the articles published in the 3 days before D. Five signals score each user x
candidate, all from data before D: co-reading (collaborative filtering on the user x article reads of the 7 days
before D, refit per date because articles live for days: item kNN, or seed 003's NMF), content (cosine between
the article's brand, category, topic and section = brand x category and the user's 30-day reading profile; this
handles cold start), popularity (views of the day before), freshness (recency rank within the section, or decay
with age) and section news (the user's share of reading in the article's section times that recency).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import sparse

SIGNALS = ("content", "collaborative", "popularity", "freshness", "section_news")
CO_READING_MAX_USERS = 50_000  # readers sampled for the date's co-reading model: it settles long before all are in


@dataclass
class DateContext:
    """The candidates of a date with their content vectors, popularity, freshness and the date's co-reading model."""

    d: date
    candidates: pd.DataFrame
    brands: list[str]
    categories: list[str]
    topics: list[str]
    content: np.ndarray  # candidates x (brands + categories + topics + sections), weighted one-hots, unit rows
    popularity: np.ndarray
    freshness: np.ndarray
    section: np.ndarray  # each candidate's section (brand x category) index
    item_factors: np.ndarray | None = None  # candidates x candidates co-reading similarity, or NMF components (k x candidates)


@dataclass
class UserBatch:
    """Users with their reading profiles (users x content dims) and recent candidate reads (users x candidates)."""

    user_ids: np.ndarray
    profile: sparse.csr_matrix
    recent: sparse.csr_matrix


def vocabularies(candidates: pd.DataFrame) -> dict[str, list[str]]:
    """The brands, categories and topics of a date's candidates: the content vectors' dimensions."""
    return {"brands": sorted(candidates["brand_id"].unique()), "categories": sorted(candidates["category_id"].unique()),
            "topics": sorted(candidates["topic"].astype(str).unique())}


def context(candidates: pd.DataFrame, d: date, est) -> DateContext:
    """The date's candidates as content vectors (weighted by ``est``'s ``*_weight``s), popularity and freshness."""
    vocab = vocabularies(candidates)
    brands, categories, topics = vocab["brands"], vocab["categories"], vocab["topics"]
    rows = np.arange(len(candidates))
    nb, nc, nt = len(brands), len(categories), len(topics)
    b = candidates["brand_id"].map({x: i for i, x in enumerate(brands)}).to_numpy()
    c = candidates["category_id"].map({x: i for i, x in enumerate(categories)}).to_numpy()
    content = np.zeros((len(candidates), nb + nc + nt + nb * nc))
    content[rows, b] = est.brand_weight
    content[rows, nb + c] = est.category_weight
    content[rows, nb + nc + candidates["topic"].astype(str).map({t: i for i, t in enumerate(topics)}).to_numpy()] = est.topic_weight
    content[rows, nb + nc + nt + b * nc + c] = est.section_weight
    content /= np.maximum(np.linalg.norm(content, axis=1, keepdims=True), 1e-12)
    views = np.log1p(candidates["views_1d"].to_numpy(float))
    popularity = views / views.max() if len(views) and views.max() > 0 else np.zeros(len(views))
    if est.freshness == "section":  # readers of a section mostly find its newest articles: recency rank in the section
        rank = candidates.assign(age=candidates["age_hours"]).groupby(["brand_id", "category_id"])["age"].rank(method="first")
        freshness = 1 / rank.to_numpy(float)
    else:
        freshness = np.exp(-candidates["age_hours"].to_numpy(float) / est.freshness_hours)
    return DateContext(d, candidates, brands, categories, topics, content, popularity, freshness, b * nc + c)


def counts(frame: pd.DataFrame, n_users: int, n_items: int) -> sparse.csr_matrix:
    """(i = user number, item (1-based, 0 = not a candidate), n) rows as a users x candidates count matrix."""
    frame = frame[frame["item"] > 0]
    return sparse.csr_matrix((frame["n"].to_numpy(float), (frame["i"].to_numpy().astype(np.int64),
                                                           frame["item"].to_numpy().astype(np.int64) - 1)),
                             shape=(n_users, n_items))


def user_batch(ctx: DateContext, user_ids: np.ndarray, profile_rows: pd.DataFrame, recent_rows: pd.DataFrame, est) -> UserBatch:
    """Users' reading profiles from their (i, b, c, t, n) view counts over the date's vocabularies (1-based indexes,
    0 outside them), weighted like the content vectors, and their recent reads of the candidates."""
    nb, nc, nt = len(ctx.brands), len(ctx.categories), len(ctx.topics)
    row, n = profile_rows["i"].to_numpy().astype(np.int64), profile_rows["n"].to_numpy(float)
    b, c_, t = (profile_rows[k].to_numpy().astype(np.int64) for k in ("b", "c", "t"))
    weights = ((b > 0, b - 1, est.brand_weight), (c_ > 0, nb + c_ - 1, est.category_weight),
               (t > 0, nb + nc + t - 1, est.topic_weight),
               ((b > 0) & (c_ > 0), nb + nc + nt + (b - 1) * nc + c_ - 1, est.section_weight))
    r, c, v = [], [], []
    for known, column, weight in weights:  # reads outside today's vocabularies add nothing
        r.append(row[known])
        c.append(column[known])
        v.append(n[known] * weight)
    profile = sparse.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))),
                                shape=(len(user_ids), ctx.content.shape[1]))
    return UserBatch(user_ids, profile, counts(recent_rows, len(user_ids), len(ctx.candidates)))


def fit_co_reading(ctx: DateContext, recent: sparse.csr_matrix, est) -> DateContext:
    """The date's co-reading model from recent user x candidate reads (users who read any): ``collaborative="item_knn"``
    the candidates' cosine similarity over their readers, ``"nmf"`` NMF item factors; in ``ctx.item_factors``."""
    active = recent[np.asarray(recent.sum(1)).ravel() > 0]
    if active.shape[0] > CO_READING_MAX_USERS:
        rng = np.random.default_rng(est.random_state)
        active = active[np.sort(rng.choice(active.shape[0], CO_READING_MAX_USERS, replace=False))]
    ctx.item_factors = None
    if active.shape[0] < 3 or active.nnz < 10:
        return ctx
    if est.collaborative == "item_knn":
        X = (active > 0).astype(np.float64)
        norms = np.sqrt(np.asarray(X.sum(0))).ravel()
        similarity = np.asarray((X.T @ X).todense()) / np.maximum(np.outer(norms, norms), 1e-12)
        np.fill_diagonal(similarity, 0.0)
        ctx.item_factors = similarity
        return ctx
    from sklearn.decomposition import NMF

    k = min(est.n_components, active.shape[0] - 1, active.shape[1] - 1)
    if k >= 2:
        ctx.item_factors = NMF(k, init="nndsvda", max_iter=300, random_state=est.random_state).fit(
            active.astype(np.float64).log1p()).components_
    return ctx


def signals(ctx: DateContext, batch: UserBatch, rows: slice, est) -> dict[str, np.ndarray]:
    """Each signal for the users in ``rows``, scaled to about [0, 1]: users x candidates each."""
    profile = batch.profile[rows]
    norms = np.sqrt(np.asarray(profile.multiply(profile).sum(1))).ravel()
    content = np.asarray(profile @ ctx.content.T) / np.where(norms > 0, norms, 1)[:, None]
    n = content.shape[0]
    out = {"content": content, "popularity": np.broadcast_to(ctx.popularity, (n, len(ctx.popularity))),
           "freshness": np.broadcast_to(ctx.freshness, (n, len(ctx.freshness)))}
    # the user's share of reading in each candidate's section (brand x category) times the candidate's recency there
    first = len(ctx.brands) + len(ctx.categories) + len(ctx.topics)
    sections = np.asarray(profile[:, first:].todense())
    sections /= np.maximum(sections.sum(1, keepdims=True), 1e-12)
    out["section_news"] = sections[:, ctx.section] * ctx.freshness[None, :]
    if ctx.item_factors is not None:
        recent = batch.recent[rows].astype(np.float64).log1p()
        if est.collaborative == "item_knn":  # items read together with what the user read
            cf = np.asarray(recent @ ctx.item_factors)
        else:
            H = ctx.item_factors
            W = np.asarray(recent @ H.T) / max(float((H ** 2).sum(1).mean()), 1e-12)
            for _ in range(30):  # fold the users in: multiplicative updates of W with H fixed
                W *= np.asarray(recent @ H.T) / (W @ (H @ H.T) + 1e-9)
            cf = W @ H
        out["collaborative"] = cf / np.maximum(cf.max(1, keepdims=True), 1e-12)
    else:
        out["collaborative"] = np.zeros_like(content)
    return out


def scores(model, ctx: DateContext, batch: UserBatch, rows: slice) -> np.ndarray:
    """The blended scores (users x candidates) of a fitted model for the users in ``rows``."""
    found = signals(ctx, batch, rows, model.estimator)
    return model.estimator.blend([found[name] for name in model.features])


def design(found: dict[str, np.ndarray], names: list[str], keep: np.ndarray | None = None) -> np.ndarray:
    """The signals as a design matrix, one row per (user, candidate) (user-major), one column per name; ``keep``
    (users x candidates, boolean) leaves pairs out."""
    columns = [np.asarray(found[name]).ravel() for name in names]
    X = np.column_stack(columns)
    return X if keep is None else X[keep.ravel()]
