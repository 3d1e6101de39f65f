"""Content recommendation: a hybrid of collaborative filtering and content-based filtering (seed 003).

For a date D the candidates are the articles published in the 3 days before D (news is read young). Five
signals score each user x candidate, all from data before D: co-reading (collaborative filtering on the user x
article reads of the 7 days before D, computed that day: articles live for days, so it is refit per date while
the blend is what training learns; item kNN by default, seed 003's NMF as ``collaborative="nmf"``: on the real
MS Web data, benchmarks/msweb_recommender.py, item kNN reaches hit rate@10 0.78 and NMF 0.35), cosine similarity between the article's content (brand, category,
topic, section = brand x category) and the user's 30-day reading profile (this handles cold start), the
article's recent popularity, its recency rank within its section ("freshness": readers of a section mostly
find its newest articles), and "section news", the user's share of reading in the article's section times
that recency. Training picks the blend weights that maximise precision@10 on one date's next-7-day reads,
then evaluates on a later date next to each signal alone and next to the oracle (the simulator's true
brand x category reading weights of each user times each article's share of its group's reads). Batch
recommendations go to customer_recommendations (top 10 per user, already-read articles excluded).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from scipy import sparse

from ownlens.ml.data.loaders import as_date, latest_feature_date, query_frame
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.base import BaseMLModel, BaseTaskPredictor, BaseTaskTrainer
from ownlens.ml.models.data import brand_filter
from ownlens.ml.models.estimators import JsonStateEstimator
from ownlens.ml.models.model import TrainedModel
from ownlens.ml.models.spec import TaskModel
from ownlens.ml.warehouse import reload_if_loaded, replace_partition

if TYPE_CHECKING:  # annotations only
    from ownlens.ml.models.training import TrainingResult

CANDIDATE_DAYS, PROFILE_DAYS, RECENT_DAYS, HORIZON_DAYS, TOP_K = 3, 30, 7, 7, 10
MAX_CANDIDATES = 2000
SIGNALS = ("collaborative", "content", "popularity", "freshness", "section_news")
CHUNK_USERS = 10_000  # users scored at once (a chunk x candidates score matrix per signal)
NMF_MAX_USERS = 50_000  # readers sampled for the date's NMF

CANDIDATES = """
SELECT toString(a.article_id) AS article_id, a.brand_id AS brand_id, a.category_id AS category_id, a.topic AS topic,
       dateDiff('hour', a.publish_timestamp, toDateTime({d:Date}, 'UTC')) AS age_hours, ifNull(v.views_1d, 0) AS views_1d
FROM (SELECT article_id, brand_id, category_id, topic, publish_timestamp FROM editorial_articles FINAL
      WHERE publish_timestamp >= {d:Date} - {candidate_days:UInt32} AND publish_timestamp < {d:Date}) AS a
LEFT JOIN (SELECT article_id, count() AS views_1d FROM editorial_content_events
           WHERE event_type = 'article_view' AND event_timestamp >= {d:Date} - 1 AND event_timestamp < {d:Date}
           GROUP BY article_id) AS v ON v.article_id = a.article_id
ORDER BY a.publish_timestamp DESC, a.article_id LIMIT {max_candidates:UInt32}
SETTINGS join_use_nulls = 1
"""

# the users of a batch: those with features on D (of the brand, in one hash part)
USERS = """
SELECT uf.user_id FROM customer_user_features AS uf
WHERE uf.feature_date = {d:Date} AND cityHash64(uf.user_id) % {parts:UInt64} = {part:UInt64}{where}
"""

# the users of a query numbered 0..n-1 in user_id order: rows come back as these numbers, not as text ids
NUMBERED = "SELECT user_id, toUInt32(row_number() OVER (ORDER BY user_id) - 1) AS i FROM ({users})"

# reading profile: views per (user, brand, category, topic) in the 30 days before D, as indexes of the vocabularies
PROFILE = f"""
SELECT u.i AS i, indexOf({{brands:Array(UUID)}}, e.brand_id) AS b,
       indexOf({{categories:Array(UUID)}}, assumeNotNull(e.category_id)) AS c, indexOf({{topics:Array(String)}}, a.topic) AS t,
       count() AS n
FROM editorial_content_events AS e
INNER JOIN ({NUMBERED}) AS u ON u.user_id = e.user_id
LEFT JOIN (SELECT article_id, topic FROM editorial_articles FINAL) AS a ON a.article_id = e.article_id
WHERE e.event_type = 'article_view' AND e.event_timestamp >= {{d:Date}} - {{profile_days:UInt32}} AND e.event_timestamp < {{d:Date}}
  AND e.user_id IN ({{users}})
GROUP BY i, b, c, t
"""

# views of the candidates in a window: [D - recent_days, D) for co-reading, [D, D + horizon) for evaluation
READS = f"""
SELECT u.i AS i, indexOf({{candidates:Array(UUID)}}, e.article_id) AS item, count() AS n
FROM editorial_content_events AS e
INNER JOIN ({NUMBERED}) AS u ON u.user_id = e.user_id
WHERE e.event_type = 'article_view' AND e.event_timestamp >= {{start:Date}} AND e.event_timestamp < {{end:Date}}
  AND e.article_id IN {{candidates:Array(UUID)}} AND e.user_id IN ({{users}})
GROUP BY i, item
"""


@dataclass
class DateContext:
    """The candidates of a date with their content vectors, popularity, freshness and NMF item factors."""

    d: date
    candidates: pd.DataFrame
    brands: list[str]
    categories: list[str]
    topics: list[str]
    content: np.ndarray  # candidates x (brands + categories + topics), weighted one-hots, unit rows
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


class HybridRecommender(JsonStateEstimator):
    """Weighted blend of the five signals; ``fit`` learns the weights on users with known next reads.
    ``freshness="section"`` ranks recency within the section, ``"age"`` decays with age (``freshness_hours``)."""

    fitted_attributes = ("weights_", "grid_scores_")

    def __init__(self, *, collaborative="item_knn", n_components=16, brand_weight=0.6, category_weight=1.0, topic_weight=0.5, section_weight=1.0,
                 freshness="section", freshness_hours=36.0, k=TOP_K, random_state=0):
        self.collaborative = collaborative
        self.n_components = n_components
        self.brand_weight = brand_weight
        self.category_weight = category_weight
        self.topic_weight = topic_weight
        self.section_weight = section_weight
        self.freshness = freshness
        self.freshness_hours = freshness_hours
        self.k = k
        self.random_state = random_state

    # -- per-date state ------------------------------------------------------------------------
    def context(self, client: Client, d: date) -> DateContext:
        cands = query_frame(client, CANDIDATES, {"d": d, "candidate_days": CANDIDATE_DAYS, "max_candidates": MAX_CANDIDATES})
        if cands.empty:
            raise NotFound(f"no articles were published in the {CANDIDATE_DAYS} days before {d}: nothing to recommend")
        brands, categories = sorted(cands["brand_id"].unique()), sorted(cands["category_id"].unique())
        topics = sorted(cands["topic"].astype(str).unique())
        rows = np.arange(len(cands))
        nb, nc, nt = len(brands), len(categories), len(topics)
        b = cands["brand_id"].map({x: i for i, x in enumerate(brands)}).to_numpy()
        c = cands["category_id"].map({x: i for i, x in enumerate(categories)}).to_numpy()
        content = np.zeros((len(cands), nb + nc + nt + nb * nc))  # brand, category, topic, section (brand x category)
        content[rows, b] = self.brand_weight
        content[rows, nb + c] = self.category_weight
        content[rows, nb + nc + cands["topic"].astype(str).map({t: i for i, t in enumerate(topics)}).to_numpy()] = self.topic_weight
        content[rows, nb + nc + nt + b * nc + c] = self.section_weight
        content /= np.linalg.norm(content, axis=1, keepdims=True)
        views = np.log1p(cands["views_1d"].to_numpy(float))
        popularity = views / views.max() if views.max() > 0 else np.zeros(len(views))
        if self.freshness == "section":  # readers of a section mostly find its newest articles: recency rank in the section
            rank = cands.assign(age=cands["age_hours"]).groupby(["brand_id", "category_id"])["age"].rank(method="first")
            freshness = 1 / rank.to_numpy(float)
        else:
            freshness = np.exp(-cands["age_hours"].to_numpy(float) / self.freshness_hours)
        return DateContext(d, cands, brands, categories, topics, content, popularity, freshness, b * nc + c)

    def users(self, client: Client, ctx: DateContext, users_sql: str, params: dict) -> UserBatch:
        vocab = {"brands": ctx.brands, "categories": ctx.categories, "topics": ctx.topics}
        ids = query_frame(client, f"SELECT toString(q.user_id) AS id FROM ({users_sql}) AS q ORDER BY q.user_id", params)["id"]
        ids = ids.to_numpy(str)  # row i of every matrix below is user ids[i] (NUMBERED's order: by the UUID, not its text)
        prof = query_frame(client, PROFILE.replace("{users}", users_sql), {**params, **vocab, "d": ctx.d, "profile_days": PROFILE_DAYS})
        start = pd.Timestamp(ctx.d) - pd.Timedelta(days=RECENT_DAYS)
        recent = reads(client, ctx, users_sql, params, start, pd.Timestamp(ctx.d))
        nb, nc, nt = len(ctx.brands), len(ctx.categories), len(ctx.topics)
        row, n = prof["i"].to_numpy().astype(np.int64), prof["n"].to_numpy(float)
        b, c_, t = (prof[k].to_numpy().astype(np.int64) for k in ("b", "c", "t"))
        weights = ((b > 0, b - 1, self.brand_weight), (c_ > 0, nb + c_ - 1, self.category_weight),
                   (t > 0, nb + nc + t - 1, self.topic_weight),
                   ((b > 0) & (c_ > 0), nb + nc + nt + (b - 1) * nc + c_ - 1, self.section_weight))
        r, c, v = [], [], []
        for known, column, weight in weights:  # reads outside today's vocabularies add nothing
            r.append(row[known])
            c.append(column[known])
            v.append(n[known] * weight)
        profile = sparse.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))),
                                    shape=(len(ids), ctx.content.shape[1]))
        return UserBatch(ids, profile, _matrix(recent, len(ids), len(ctx.candidates)))

    def fit_factors(self, ctx: DateContext, recent: sparse.csr_matrix) -> DateContext:
        """The co-reading model of the date from the recent user x candidate reads (users who read any):
        ``collaborative="item_knn"`` the candidates' cosine similarity over their readers, ``"nmf"`` NMF item
        factors; either lands in ``ctx.item_factors``."""
        active = recent[np.asarray(recent.sum(1)).ravel() > 0]
        if active.shape[0] > NMF_MAX_USERS:  # the co-reading settles long before every reader is in
            rng = np.random.default_rng(self.random_state)
            active = active[np.sort(rng.choice(active.shape[0], NMF_MAX_USERS, replace=False))]
        ctx.item_factors = None
        if active.shape[0] < 3 or active.nnz < 10:
            return ctx
        if self.collaborative == "item_knn":
            X = (active > 0).astype(np.float64)
            norms = np.sqrt(np.asarray(X.sum(0))).ravel()
            similarity = np.asarray((X.T @ X).todense()) / np.maximum(np.outer(norms, norms), 1e-12)
            np.fill_diagonal(similarity, 0.0)
            ctx.item_factors = similarity
            return ctx
        from sklearn.decomposition import NMF

        k = min(self.n_components, active.shape[0] - 1, active.shape[1] - 1)
        if k >= 2:
            ctx.item_factors = NMF(k, init="nndsvda", max_iter=300, random_state=self.random_state).fit(
                active.astype(np.float64).log1p()).components_
        return ctx

    # -- scoring -------------------------------------------------------------------------------
    def signals(self, ctx: DateContext, batch: UserBatch, rows: slice) -> dict[str, np.ndarray]:
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
            if self.collaborative == "item_knn":  # items read together with what the user read
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

    def blend(self, signals: dict[str, np.ndarray], weights=None) -> np.ndarray:
        weights = dict(zip(SIGNALS, self.weights_)) if weights is None else weights
        return sum(weights[s] * signals[s] for s in SIGNALS if weights[s])

    def top_k(self, scores: np.ndarray, read: sparse.csr_matrix, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k candidate indexes and scores per user, articles already read excluded."""
        k = min(k or self.k, scores.shape[1])
        scores = np.array(scores, dtype=float)
        coo = read.tocoo()
        scores[coo.row, coo.col] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        top = np.take_along_axis(top, order, 1)
        return top, np.take_along_axis(scores, top, 1)

    def fit(self, ctx: DateContext, batch: UserBatch, truth: sparse.csr_matrix, rounds: int = 2):
        """Learn the blend weights (content fixed at 1) for precision@k on ``truth`` (later reads): coordinate ascent,
        each other signal's weight in turn picked from a grid with the rest held, ``rounds`` times over."""
        signals = self.signals(ctx, batch, slice(None))
        grid = (0.0, 0.25, 0.5, 1.0, 2.0)
        scores: dict[tuple, float] = {}

        def score(weights: tuple) -> float:
            if weights not in scores:
                top, _ = self.top_k(self.blend(signals, dict(zip(SIGNALS, weights))), batch.recent)
                scores[weights] = ranking_metrics(top, truth, self.k)["precision_at_k"] or 0.0
            return scores[weights]

        best = tuple(1.0 if s == "content" else 0.0 for s in SIGNALS)
        for _ in range(rounds):
            for i, name in enumerate(SIGNALS):
                if name != "content":
                    best = max((best[:i] + (g,) + best[i + 1:] for g in grid), key=lambda w: (score(w), -sum(w)))
        self.weights_ = np.array(best)
        self.grid_scores_ = {"best": scores[best], "content_only": score(tuple(1.0 if s == "content" else 0.0 for s in SIGNALS)),
                             "evaluated": len(scores)}
        return self

    def feature_importances(self) -> np.ndarray:
        w = np.asarray(self.weights_, dtype=float)
        return w / w.sum() if w.sum() else w


def _matrix(frame: pd.DataFrame, n_users: int, n_items: int) -> sparse.csr_matrix:
    """(i = user number, item (1-based, 0 = not a candidate), n) rows as a users x candidates count matrix."""
    frame = frame[frame["item"] > 0]
    return sparse.csr_matrix((frame["n"].to_numpy(float), (frame["i"].to_numpy().astype(np.int64), frame["item"].to_numpy().astype(np.int64) - 1)),
                             shape=(n_users, n_items))


def reads(client: Client, ctx: DateContext, users_sql: str, params: dict, start, end) -> pd.DataFrame:
    """(i, item, n): views of the candidates between ``start`` and ``end`` by the users of ``users_sql``, numbered."""
    return query_frame(client, READS.replace("{users}", users_sql), {**params, "candidates": ctx.candidates["article_id"].tolist(),
                                                                   "start": start.date(), "end": end.date()})


def _everyone(client: Client, ctx: DateContext, d: date) -> sparse.csr_matrix:
    """Reads of the candidates in the week before ``d`` by every user with features that day (for the NMF)."""
    everyone = "SELECT user_id FROM customer_user_features WHERE feature_date = {d:Date}"
    frame = reads(client, ctx, everyone, {"d": d}, pd.Timestamp(d) - pd.Timedelta(days=RECENT_DAYS), pd.Timestamp(d))
    return _matrix(frame, int(frame["i"].max()) + 1 if len(frame) else 0, len(ctx.candidates))


def ranking_metrics(top: np.ndarray, truth: sparse.csr_matrix, k: int) -> dict:
    """precision@k, recall@k, hit rate@k and NDCG@k over users with at least one relevant item."""
    relevant = (truth > 0).toarray()
    has = relevant.sum(1)
    keep = has > 0
    if not keep.any():
        return {"precision_at_k": None, "recall_at_k": None, "hit_rate_at_k": None, "ndcg_at_k": None, "users": 0}
    hits = np.take_along_axis(relevant, top, 1).astype(float)[keep]
    k = top.shape[1]
    discounts = 1 / np.log2(np.arange(2, k + 2))
    ideal = np.array([discounts[:min(int(h), k)].sum() for h in has[keep]])
    return {"precision_at_k": float(hits.sum(1).mean() / k), "recall_at_k": float((hits.sum(1) / has[keep]).mean()),
            "hit_rate_at_k": float((hits.sum(1) > 0).mean()), "ndcg_at_k": float(((hits * discounts).sum(1) / ideal).mean()),
            "users": int(keep.sum())}


def _eval_users_sql(where: str) -> str:
    """A hash sample of D's users who read any candidate in the horizon (the users a ranking can be judged on)."""
    return f"""
SELECT uf.user_id FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}}{where} AND uf.user_id IN (
    SELECT user_id FROM editorial_content_events WHERE event_type = 'article_view' AND event_timestamp >= {{d:Date}}
      AND event_timestamp < {{d:Date}} + {{horizon:UInt32}} AND article_id IN {{candidates:Array(UUID)}})
ORDER BY cityHash64(uf.user_id) LIMIT {{sample:UInt32}}
"""


def _evaluation_set(client: Client, est: HybridRecommender, d: date, brand_id, sample: int):
    ctx = est.context(client, d)
    params: dict = {"d": d, "horizon": HORIZON_DAYS, "candidates": ctx.candidates["article_id"].tolist(), "sample": sample}
    users_sql = _eval_users_sql(brand_filter(client, brand_id, params))
    batch = est.users(client, ctx, users_sql, params)
    if len(batch.user_ids) == 0:
        raise NotFound(f"no user read any of {d}'s candidate articles in the {HORIZON_DAYS} days after it: "
                       "pick an earlier date with a week of data after it")
    est.fit_factors(ctx, _everyone(client, ctx, d))  # from every reader of the week before D, not just the sample
    later = reads(client, ctx, users_sql, params, pd.Timestamp(d), pd.Timestamp(d) + pd.Timedelta(days=HORIZON_DAYS))
    truth = _matrix(later, len(batch.user_ids), len(ctx.candidates))
    truth = (truth - truth.multiply(batch.recent > 0)).tocsr()  # already-read articles are never recommended, nor judged
    truth.eliminate_zeros()
    return ctx, batch, truth


def oracle_scores(client: Client, ctx: DateContext, batch: UserBatch, later_end) -> np.ndarray | None:
    """The simulator's truth: each user's brand x category reading weights times each candidate's share of its
    brand-category's reads in the horizon; None without simulator tables."""
    from ownlens.ml.simulation import catalog as cat

    truth = query_frame(client, "SELECT toString(s.user_id) AS user_id, toString(s.home_brand_id) AS home, s.topic_preferences AS prefs "
                                "FROM sim_users AS s WHERE s.user_id IN {users:Array(UUID)}", {"users": batch.user_ids.tolist()})
    if truth.empty:
        return None
    arts = query_frame(client, "SELECT toString(s.article_id) AS article_id, s.category_index AS category_index FROM sim_articles AS s "
                       "WHERE s.article_id IN {a:Array(UUID)}",
                       {"a": ctx.candidates["article_id"].tolist()})
    share = query_frame(client, """
SELECT toString(e.article_id) AS article_id, count() / sum(count()) OVER (PARTITION BY e.brand_id, e.category_id) AS share
FROM editorial_content_events AS e WHERE e.event_type = 'article_view' AND e.article_id IN {a:Array(UUID)}
  AND e.event_timestamp >= {d:Date} AND e.event_timestamp < {end:Date} GROUP BY e.article_id, e.brand_id, e.category_id""",
                        {"a": ctx.candidates["article_id"].tolist(), "d": ctx.d, "end": later_end.date()})
    brand_ids = [cat.stable_id("brand", b[0]) for b in cat.BRANDS]
    mix = np.array([b[4] for b in cat.BRANDS], dtype=float)
    cand = ctx.candidates.merge(arts, on="article_id", how="left").merge(share, on="article_id", how="left")
    b_idx = cand["brand_id"].map({str(b): i for i, b in enumerate(brand_ids)}).to_numpy()
    c_idx = cand["category_index"].fillna(0).astype(int).to_numpy()
    truth = truth.set_index("user_id").reindex(batch.user_ids)
    prefs = np.stack([np.asarray(p, dtype=float) if isinstance(p, (list, np.ndarray)) else np.full(mix.shape[1], 1 / mix.shape[1])
                      for p in truth["prefs"]])
    home = truth["home"].map({str(b): i for i, b in enumerate(brand_ids)}).fillna(0).astype(int).to_numpy()
    n_brands = len(brand_ids)
    p_brand = np.where(home[:, None] == np.arange(n_brands)[None, :], 0.85, 0.15 / (n_brands - 1))
    cat_given_brand = prefs[:, None, :] * mix[None, :, :]
    cat_given_brand /= cat_given_brand.sum(2, keepdims=True)
    weight = p_brand[:, b_idx] * cat_given_brand[:, b_idx, c_idx]
    return weight * cand["share"].fillna(0).to_numpy()[None, :]


def _dates_with_horizon(client: Client) -> list[date]:
    rows = client.query("SELECT DISTINCT feature_date FROM customer_user_features WHERE feature_date + {h:UInt32} <= "
                        "(SELECT max(toDate(event_timestamp)) FROM editorial_content_events) ORDER BY feature_date",
                        parameters={"h": HORIZON_DAYS}).result_rows
    return [r[0] for r in rows]


def train(client: Client, *, feature_date=None, test_date=None, brand_id=None, limit: int | None = 5_000,
          register: bool = True, seed: int = 0, **_) -> "TrainingResult":
    """Learn the blend on ``feature_date`` (default: the latest date whose week of reads ends by the test date) and evaluate on
    ``test_date`` (default: the latest feature date with a week of reads after it); ``limit`` users each."""
    from ownlens.ml.models.training import finish_task_training, recorded_run

    dates = _dates_with_horizon(client)
    if not dates:
        raise NotFound(f"no feature date has {HORIZON_DAYS} days of reading after it: build features for an earlier date")
    test_d = as_date(test_date, "test_date") if test_date else dates[-1]
    earlier = [d for d in dates if d + timedelta(days=HORIZON_DAYS) <= test_d]  # its week of reads ends before the test week
    fit_d = as_date(feature_date, "feature_date") if feature_date else (earlier[-1] if earlier else test_d)
    sample = int(limit or 5_000)
    if sample < 10:
        raise InvalidInput(f"--limit must be at least 10 users for recommendation (got {limit})")
    with recorded_run(client, RECOMMENDATION.name, {"feature_date": fit_d, "test_date": test_d, "brand_id": brand_id,
                                                     "limit": sample, "seed": seed}) as run:
        t0 = time.perf_counter()
        est = HybridRecommender(random_state=seed)
        est.fit(*_evaluation_set(client, est, fit_d, brand_id, sample))
        ctx, batch, truth = _evaluation_set(client, est, test_d, brand_id, sample)
        signals = est.signals(ctx, batch, slice(None))
        compared = {}
        for name in SIGNALS:
            top, _ = est.top_k(signals[name], batch.recent)
            compared[name] = ranking_metrics(top, truth, est.k)
        top, _ = est.top_k(est.blend(signals), batch.recent)
        metrics = ranking_metrics(top, truth, est.k)
        metrics["catalog_coverage"] = float(len(np.unique(top)) / len(ctx.candidates))
        metrics["candidates"] = len(ctx.candidates)
        metrics["weights"] = dict(zip(SIGNALS, map(float, est.weights_)))
        metrics["signals_alone"] = {k: {m: v[m] for m in ("precision_at_k", "recall_at_k")} for k, v in compared.items()}
        oracle_matrix = oracle_scores(client, ctx, batch, pd.Timestamp(test_d) + pd.Timedelta(days=HORIZON_DAYS))
        oracle = None
        if oracle_matrix is not None:
            top_oracle, _ = est.top_k(oracle_matrix, batch.recent)
            oracle = ranking_metrics(top_oracle, truth, est.k)
        split = {"kind": "time" if fit_d != test_d else "same date", "train_dates": [str(fit_d)], "test_date": str(test_d),
                 "train_rows": sample, "test_rows": metrics["users"]}
        return finish_task_training(client, RECOMMENDATION, est, list(SIGNALS), metrics, oracle, split, (fit_d, fit_d), run,
                                    register, extra={"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def _prepared(client: Client, model: TrainedModel, d: date) -> DateContext:
    """The date's context with NMF factors fitted on the readers of the week before ``d``."""
    ctx = model.estimator.context(client, d)
    return model.estimator.fit_factors(ctx, _everyone(client, ctx, d))


def recommend_batch(client: Client, model: TrainedModel, d, brand_id=None, progress=None, batch_users: int = 100_000,
                    ab_test=None) -> dict:
    """Top-10 recommendations for every user of ``d`` (of the brand, if given) into customer_recommendations,
    replacing that date's rows (of that brand). With a running ``ab_test`` (monitoring.abtest.ABTest) each user
    gets their arm's version instead of ``model``, and each row names the version that made it."""
    t0 = time.perf_counter()
    d = as_date(d) if d else latest_feature_date(client)
    params: dict = {"d": d}
    where = brand_filter(client, brand_id, params)
    passes = [(model, "")]
    if ab_test is not None:
        from ownlens.ml.monitoring.abtest import VARIANT_SQL
        from ownlens.ml.registry import store

        params |= {"test": ab_test.test_id, "split": ab_test.split}
        arm_sql = f" AND {VARIANT_SQL.replace('toString(user_id)', 'toString(uf.user_id)')} = "
        passes = [(store.load(client, RECOMMENDATION.name, v), arm_sql + f"{{arm{arm}:String}}")
                  for arm, v in (("A", ab_test.version_a), ("B", ab_test.version_b))]
        params |= {"armA": "A", "armB": "B"}
    total = int(client.command(f"SELECT count() FROM customer_user_features AS uf WHERE uf.feature_date = {{d:Date}}{where}",
                               parameters=params))
    if total == 0:
        raise NotFound(f"no user features on {d}" + (f" for brand {brand_id}" if brand_id else "") +
                       f": run `ownlens-ml features build --date {d}` first")
    raw = f"_recs_{uuid.uuid4().hex[:12]}"
    client.command(f"CREATE TABLE {raw} (user_id String, item UInt16, rank UInt16, score Float64, pass_no UInt8) "
                   "ENGINE = MergeTree ORDER BY tuple()")
    parts, done, candidates = max(1, -(-total // batch_users)), 0, None
    try:
        for number, (m, arm_where) in enumerate(passes):
            est, ctx = m.estimator, _prepared(client, m, d)
            if candidates is not None and ctx.candidates["article_id"].tolist() != candidates:
                raise RuntimeError("the candidates of one date differ between passes")  # a query is not deterministic
            candidates = ctx.candidates["article_id"].tolist()
            for part in range(parts):
                users_sql = USERS.replace("{where}", where + arm_where)
                batch = est.users(client, ctx, users_sql, {**params, "parts": parts, "part": part})
                for start in range(0, len(batch.user_ids), CHUNK_USERS):
                    rows = slice(start, start + CHUNK_USERS)
                    top, scores = est.top_k(est.blend(est.signals(ctx, batch, rows)), batch.recent[rows])
                    n, k = top.shape
                    finite = np.isfinite(scores).ravel()
                    client.insert_arrow(raw, pa.table({
                        "user_id": pa.array(np.repeat(batch.user_ids[rows], k)[finite]),
                        "item": pa.array(top.ravel()[finite].astype(np.uint16)),
                        "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.uint16), n)[finite]),
                        "score": pa.array(scores.ravel()[finite]),
                        "pass_no": pa.array(np.full(int(finite.sum()), number, np.uint8))}))
                done += len(batch.user_ids)
                if progress:
                    progress(done)
        write = {**params, "candidates": candidates, "algorithm": RECOMMENDATION.algorithm,
                 "versions": [m.version or "unregistered" for m, _ in passes], "model_ids": [m.model_id or "" for m, _ in passes]}
        keep = "recommendation_date = {d:Date}" + where.replace("uf.brand_id = {brand:UUID}", "brand_id != {brand:UUID}") if brand_id else None
        rows = replace_partition(client, "customer_recommendations", d, f"""
SELECT toUUID(r.user_id), {{d:Date}}, uf.brand_id, {{candidates:Array(UUID)}}[r.item + 1], r.rank, r.score, {{algorithm:String}},
       toUUIDOrNull({{model_ids:Array(String)}}[r.pass_no + 1]), {{versions:Array(String)}}[r.pass_no + 1], now()
FROM {raw} AS r INNER JOIN (SELECT user_id, brand_id FROM customer_user_features WHERE feature_date = {{d:Date}}) AS uf
  ON uf.user_id = toUUID(r.user_id)""", write, keep=keep)
    finally:
        client.command(f"DROP TABLE IF EXISTS {raw}")
    reload_if_loaded(client, "dict_user_recommendations")
    seconds = time.perf_counter() - t0
    version = " | ".join(m.version or "unregistered" for m, _ in passes)
    return {"model": RECOMMENDATION.name, "version": version, "date": str(d), "users": done, "rows": rows,
            "seconds": round(seconds, 3), "table": RECOMMENDATION.output_table}


STORED = """
SELECT toString(article_id) AS article_id, rank, score, recommendation_date, model_version
FROM customer_recommendations
WHERE recommendation_date = (SELECT max(recommendation_date) FROM customer_recommendations WHERE recommendation_date <= {d:Date})
  AND user_id = {user:UUID}
ORDER BY rank LIMIT {k:UInt16}
"""


# the newest batch from the in-memory dictionary (schema 006); a user it does not hold comes back with no articles
STORED_DICT = """
SELECT v.1 AS recommendation_date, v.2 AS article_ids, v.3 AS scores, v.4 AS model_version
FROM (SELECT dictGet('dict_user_recommendations', ('recommendation_date', 'article_ids', 'scores', 'model_version'),
                     tuple(toUUID({user:String}))) AS v)
"""


def stored(client: Client, user_id: str, d: date, k: int = TOP_K) -> pd.DataFrame:
    """A user's stored recommendations of the newest batch on or before ``d`` (the dictionary when it holds that
    batch, else the table)."""
    try:
        rows = client.query(STORED_DICT, parameters={"user": user_id}).result_rows
    except Exception:  # the dictionary is missing or cannot load: the table answers
        rows = []
    if rows and rows[0][1] and rows[0][0] == d:
        day, articles, scores, version = rows[0]
        n = min(k, len(articles))
        return pd.DataFrame({"article_id": articles[:n], "rank": np.arange(1, n + 1), "score": scores[:n],
                             "recommendation_date": [day] * n, "model_version": [version] * n})
    return query_frame(client, STORED, {"user": user_id, "d": d, "k": k})


def recommend_users(client: Client, model: TrainedModel, user_ids: list[str], d: date, k: int = TOP_K,
                    ctx: DateContext | None = None) -> pd.DataFrame:
    """Recommendations computed now for given users (cold users get popular and fresh articles)."""
    from ownlens.ml.data.loaders import as_uuid

    est = model.estimator
    asked = list(dict.fromkeys(as_uuid(u) for u in user_ids))
    ctx = ctx or _prepared(client, model, d)
    batch = est.users(client, ctx, "SELECT arrayJoin({users:Array(UUID)}) AS user_id", {"users": asked})
    top, scores = est.top_k(est.blend(est.signals(ctx, batch, slice(None))), batch.recent, k)
    order = pd.Index(batch.user_ids).get_indexer(asked)
    top, scores, ids = top[order], scores[order], batch.user_ids[order]
    cold = np.asarray(batch.profile.getnnz(axis=1) == 0)[order]
    width = top.shape[1]
    frame = pd.DataFrame({"user_id": np.repeat(ids, width), "cold_start": np.repeat(cold, width),
                          "article_id": ctx.candidates["article_id"].to_numpy()[top.ravel()],
                          "rank": np.tile(np.arange(1, width + 1), len(ids)), "score": scores.ravel().round(6),
                          "recommendation_date": str(d), "model_version": model.version})
    return frame[np.isfinite(frame["score"])].reset_index(drop=True)  # a user who read every candidate gets fewer


def plots(result, plt) -> list[tuple[str, str]]:
    """precision@10 and recall@10 of each signal alone, the hybrid and the oracle, on the same users."""
    from ownlens.ml.models.evaluation import bars

    series = {name: v for name, v in result.metrics["signals_alone"].items()}
    series["hybrid (model)"] = {m: result.metrics[m] for m in ("precision_at_k", "recall_at_k")}
    if result.oracle_metrics:
        series["oracle"] = {m: result.oracle_metrics[m] for m in ("precision_at_k", "recall_at_k")}
    by_metric = {m: {name: values[m] for name, values in series.items()} for m in ("precision_at_k", "recall_at_k")}
    return [bars(plt, f"{m} (k={TOP_K}) on the test users' next {HORIZON_DAYS} days of reading", {m: v}, m)
            for m, v in by_metric.items()]


REALISED = """
SELECT any(model_version), count(), countIf(read), uniqExact(user_id), uniqExactIf(user_id, read)
FROM (
    SELECT r.user_id AS user_id, r.model_version AS model_version, (r.user_id, r.article_id) IN (
        SELECT user_id, article_id FROM editorial_content_events WHERE event_type = 'article_view'
          AND event_timestamp >= {d:Date} AND event_timestamp < {d:Date} + {h:UInt32}) AS read
    FROM customer_recommendations AS r WHERE r.recommendation_date = {d:Date}
)
"""


def realised(client: Client, d: date) -> dict | None:
    """How many of ``d``'s stored recommendations were read in the 7 days after it (all users, in SQL); None until
    those days have passed."""
    params = {"d": d, "h": HORIZON_DAYS}
    if not int(client.command("SELECT max(toDate(event_timestamp)) >= {d:Date} + {h:UInt32} FROM editorial_content_events",
                              parameters=params)):
        return None
    version, recommended, hits, users, users_hit = client.query(REALISED, parameters=params).result_rows[0]
    if not recommended:
        raise NotFound(f"no stored recommendations for {d}: run `ownlens-ml predict recommendation --date {d}` first")
    return {"model_version": version, "realised_precision_at_k": hits / recommended, "realised_hit_rate_at_k": users_hit / users,
            "users": users}


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query("SELECT DISTINCT recommendation_date FROM customer_recommendations ORDER BY 1").result_rows]


RECOMMENDATION = TaskModel(
    name="recommendation",
    task="ranking",
    description="Hybrid article recommendations: co-reading (item kNN) + content similarity + popularity + section recency and news",
    algorithm="hybrid-nmf-content",
    output_table="customer_recommendations",
    train=train,
    predict_batch=recommend_batch,
    primary_metric="precision_at_k",
    plots=plots,
    realised=realised,
    stored_dates=stored_dates,
)


class RecommendationModel(BaseMLModel):
    spec = RECOMMENDATION


class RecommendationTrainingPipeline(BaseTaskTrainer):
    task, model_class = RECOMMENDATION, RecommendationModel


class RecommendationPredictor(BaseTaskPredictor):
    """``RecommendationPredictor().predict(user_id, k=10)``: the user's top articles, computed now."""

    task = RECOMMENDATION

    def _lookup(self, user_ids, d, k: int = TOP_K):
        return recommend_users(self.client, self.model, user_ids, d, k)
