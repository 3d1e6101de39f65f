"""Generates a realistic multi-brand publisher in bounded batches: articles, users with latent traits, events, sessions."""

from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from ownlens.ml import schema
from ownlens.ml.errors import InvalidInput
from ownlens.ml.simulation import catalog as cat
from ownlens.ml.simulation import ids, marketing, revenue
from ownlens.ml.warehouse import drop_scratch, scratch_table, table_exists

log = logging.getLogger(__name__)

USERS_PER_BATCH = 20_000  # fixed: part of what makes a seed reproducible
MAX_STEPS = 8  # article views a session can chain through teaser clicks
PRE_WINDOW_DAYS = 30  # articles published before the first simulated day
EVENT_TYPES = ["page_view", "article_view", "article_impression", "click", "video_play",
               "ad_impression", "ad_click", "newsletter_signup", "subscription", "share"]
REFERRERS = ["", "direct", "search", "social", "newsletter", "internal"]  # "": not a page or article view
DATA_TABLES = [
    "companies", "brands", "countries", "cities", "categories", "device_types", "operating_systems", "browsers",
    "customer_events", "customer_sessions", "customer_user_state", "customer_user_features", "customer_user_labels",
    "customer_session_summary_daily", "editorial_authors", "editorial_articles", "editorial_article_content",
    "editorial_content_events", "editorial_article_performance", "editorial_author_performance",
    "editorial_category_performance", "editorial_article_features", "editorial_article_predictions", "editorial_trending",
    "sim_runs", "sim_users", "sim_articles", "sim_user_truth", "sim_topic_bursts",
    "revenue_subscription_plans", "revenue_subscription_events", "revenue_payments", "marketing_channels",
    "marketing_campaigns", "marketing_spend_daily", "marketing_touchpoints", "marketing_channel_attribution", "customer_lifetime_value",
    "sim_channel_truth", "sim_customer_value", "customer_subscription_features", "customer_subscription_labels",
]
CANDIDATES = 3  # articles a reader weighs at each step: the one read is drawn by appeal (and any burst of its topic)
BURSTS_PER_WEEK = 2.0  # news events per brand: a topic spikes for hours or days


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. The same values (seed included) give the same warehouse contents."""

    users: int = 20_000
    days: int = 90
    start: date = date(2026, 1, 5)
    seed: int = 7
    articles_per_day: int = 120
    drift_at: date | None = None

    def validate(self) -> None:
        if self.users < 1:
            raise InvalidInput(f"--users must be at least 1 (got {self.users})")
        if self.days < 1:
            raise InvalidInput(f"--days must be at least 1 (got {self.days})")
        if self.articles_per_day < 1:
            raise InvalidInput(f"--articles-per-day must be at least 1 (got {self.articles_per_day})")
        if self.seed < 0:
            raise InvalidInput(f"--seed must be a non-negative integer (got {self.seed})")
        if self.drift_at is not None and not (self.start < self.drift_at < self.end):
            raise InvalidInput(f"--drift-at must fall inside the simulated days ({self.start} .. {self.end - timedelta(days=1)})")

    @property
    def end(self) -> date:
        """First day after the simulation."""
        return self.start + timedelta(days=self.days)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _categorical(rng: np.random.Generator, cumulative: np.ndarray, size=None) -> np.ndarray:
    """Draw indices from rows of cumulative probabilities (last column 1)."""
    u = rng.random(size if size is not None else cumulative.shape[:-1])
    return (u[..., None] > cumulative).sum(-1).clip(0, cumulative.shape[-1] - 1)


@dataclass
class Articles:
    """Every article the simulation publishes, sorted by (brand, category, publish time) for look-ups."""

    key: np.ndarray  # group * 1e10 + publish second, sorted
    group: np.ndarray
    first_of_group: np.ndarray
    publish_s: np.ndarray
    quality: np.ndarray  # the latent appeal: how readily readers pick and finish it (sim_articles.quality)
    brand: np.ndarray
    category: np.ndarray
    topic: np.ndarray  # index into catalog.TOPICS
    author: np.ndarray
    has_video: np.ndarray
    words: np.ndarray
    ids: np.ndarray
    author_ids: np.ndarray

    def pick(self, group: np.ndarray, at_s: np.ndarray) -> np.ndarray:
        """The latest article of each group published at or before ``at_s`` (else the group's first)."""
        idx = np.searchsorted(self.key, group * 1e10 + at_s, side="right") - 1
        bad = (idx < 0) | (self.group[np.clip(idx, 0, None)] != group)
        return np.where(bad, self.first_of_group[group], idx)


def _epoch_s(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


@dataclass
class Bursts:
    """Injected news events (sim_topic_bursts): in one brand, a topic spikes from ``start_s`` to ``end_s``, readers
    turning to its category and to articles on it by ``1 + intensity`` at the start, fading linearly to 1."""

    brand: np.ndarray
    category: np.ndarray
    topic: np.ndarray  # index into catalog.TOPICS
    start_s: np.ndarray
    end_s: np.ndarray
    intensity: np.ndarray

    def boost(self, j: int, brand: np.ndarray, at_s: np.ndarray) -> np.ndarray:
        """Burst ``j``'s multiplier for sessions of ``brand`` starting at ``at_s`` (1 outside it)."""
        inside = (brand == self.brand[j]) & (at_s >= self.start_s[j]) & (at_s < self.end_s[j])
        fade = 1 - (at_s - self.start_s[j]) / (self.end_s[j] - self.start_s[j])
        return np.where(inside, 1 + self.intensity[j] * fade, 1.0)


def _make_bursts(cfg: SimulationConfig) -> Bursts:
    rng = np.random.default_rng([cfg.seed, 1_000_003])
    t0, t1 = _epoch_s(cfg.start - timedelta(days=PRE_WINDOW_DAYS)), _epoch_s(cfg.end)
    parts = []
    for b in range(len(cat.BRANDS)):
        n = rng.poisson(BURSTS_PER_WEEK * (t1 - t0) / (7 * 86400))
        mix = np.array(cat.BRANDS[b][4], dtype=float)
        c = rng.choice(len(cat.CATEGORIES), n, p=mix / mix.sum())
        topic = cat.FIRST_TOPIC[c] + np.floor(rng.random(n) * [len(cat.CATEGORIES[k][2]) for k in c]).astype(np.int64)
        start = np.floor(rng.uniform(t0, t1, n))
        hours = np.clip(np.exp(rng.normal(np.log(18), 0.6, n)), 4, 96)
        parts.append((np.full(n, b), c, topic, start, start + np.round(hours * 3600), np.exp(rng.normal(np.log(4), 0.4, n))))
    columns = [np.concatenate(column) for column in zip(*parts)]
    order = np.argsort(columns[3], kind="stable")
    return Bursts(*(column[order] for column in columns))


def _make_articles(cfg: SimulationConfig, client: Client, bursts: Bursts) -> Articles:
    rng = np.random.default_rng([cfg.seed, 1_000_001])
    n_brands, n_cats = len(cat.BRANDS), len(cat.CATEGORIES)
    t0 = _epoch_s(cfg.start - timedelta(days=PRE_WINDOW_DAYS))
    span_days = cfg.days + PRE_WINDOW_DAYS
    brand_volume = np.array([0.5, 0.25, 0.25])
    first_names = ["Alex", "Sam", "Priya", "Tom", "Maria", "Chen", "Fatima", "Jonas", "Lucy", "Omar", "Ines", "Kofi", "Hannah", "Ravi", "Ella"]
    last_names = ["Hughes", "Patel", "Okafor", "Schmidt", "Rossi", "Nguyen", "Walsh", "Dubois", "Khan", "Lindqvist", "Moreau", "Evans"]
    adjectives = ["Inside", "Why", "How", "The hidden cost of", "What next for", "Five things about", "The rise of", "Live:", "Analysis:", "Explained:"]
    columns = {k: [] for k in ["group", "publish_s", "quality", "brand", "category", "author", "has_video", "words"]}
    author_rows, author_ids, author_skill = [], [], []
    for b in range(n_brands):
        mix = np.array(cat.BRANDS[b][4], dtype=float)
        for c in range(n_cats):
            rate = cfg.articles_per_day * brand_volume[b] * mix[c] / mix.sum()
            n = max(1, int(np.ceil(rate * span_days)))
            n_auth = max(1, int(round(np.sqrt(rate) * 2)))
            first_author = len(author_ids)
            for a in range(n_auth):
                author_ids.append(None)
                author_skill.append(rng.normal(0, 0.5))
                author_rows.append((b, c, f"{rng.choice(first_names)} {rng.choice(last_names)}"))
            spacing = span_days * 86400 / n
            publish = t0 + (np.arange(n) + rng.random(n)) * spacing
            author = first_author + rng.integers(0, n_auth, n)
            skill = np.array(author_skill)[author]
            columns["group"].append(np.full(n, b * n_cats + c))
            columns["publish_s"].append(publish)
            columns["quality"].append(skill + rng.normal(0, 0.8, n))
            columns["brand"].append(np.full(n, b))
            columns["category"].append(np.full(n, c))
            columns["author"].append(author)
            columns["has_video"].append(rng.random(n) < (0.35 if cat.CATEGORIES[c][0] in ("sport", "culture", "technology") else 0.12))
            columns["words"].append(np.exp(rng.normal(np.log(700), 0.4, n)).astype(np.int64))
    arrays = {k: np.concatenate(v) for k, v in columns.items()}
    arrays["topic"] = _topics(cfg, arrays, bursts)
    n_articles = len(arrays["group"])
    article_ids = ids.uuid_bytes(rng, n_articles)
    author_id_raw = ids.uuid_bytes(rng, len(author_rows))
    order = np.lexsort((arrays["publish_s"], arrays["group"]))
    arrays = {k: v[order] for k, v in arrays.items()}
    article_ids = article_ids[order]
    first_of_group = np.full(n_brands * n_cats, 0)
    groups, first = np.unique(arrays["group"], return_index=True)
    first_of_group[groups] = first
    articles = Articles(key=arrays["group"] * 1e10 + arrays["publish_s"], first_of_group=first_of_group,
                        ids=article_ids, author_ids=author_id_raw, **arrays)
    _write_articles(cfg, client, articles, author_rows, rng, adjectives)
    _write_bursts(client, bursts)
    return articles


def _topics(cfg: SimulationConfig, a: dict, bursts: Bursts) -> np.ndarray:
    """Each article's topic: any of its category's, except that during a burst most of the brand's articles in that
    category cover the burst's topic."""
    rng = np.random.default_rng([cfg.seed, 1_000_004])
    sizes = np.array([len(topics) for _, _, topics in cat.CATEGORIES])
    topic = cat.FIRST_TOPIC[a["category"]] + np.floor(rng.random(len(a["category"])) * sizes[a["category"]]).astype(np.int64)
    for j in range(len(bursts.brand)):
        covering = ((a["brand"] == bursts.brand[j]) & (a["category"] == bursts.category[j]) & (a["publish_s"] >= bursts.start_s[j])
                    & (a["publish_s"] < bursts.end_s[j]) & (rng.random(len(topic)) < 0.7))
        topic[covering] = bursts.topic[j]
    return topic


def _write_bursts(client: Client, b: Bursts) -> None:
    brand_ids = [str(cat.stable_id("brand", code)) for code, *_ in cat.BRANDS]
    category_ids = [str(cat.stable_id("category", code)) for code, *_ in cat.CATEGORIES]
    client.insert_df("sim_topic_bursts", pd.DataFrame({
        "burst_id": np.arange(len(b.brand), dtype=np.uint32),
        "brand_id": [brand_ids[i] for i in b.brand],
        "category_id": [category_ids[i] for i in b.category],
        "topic": [cat.TOPICS[t][1] for t in b.topic],
        "start_at": pd.to_datetime(b.start_s.astype(np.int64), unit="s"),
        "end_at": pd.to_datetime(b.end_s.astype(np.int64), unit="s"),
        "intensity": b.intensity,
    }))


def _write_articles(cfg, client, a: Articles, author_rows, rng, adjectives) -> None:
    brand_ids = ids.uuid_table([cat.stable_id("brand", b[0]) for b in cat.BRANDS])
    cat_ids = ids.uuid_table([cat.stable_id("category", c[0]) for c in cat.CATEGORIES])
    n = len(a.group)
    topics = np.array([name for _, name in cat.TOPICS], dtype=object)[a.topic]
    nouns = ["plan", "deal", "debate", "comeback", "breakthrough", "crisis", "season", "vote", "record", "warning", "launch", "shift"]
    titles = [f"{topics[i]}: {adjectives[j]} the {nouns[k]}" for i, (j, k) in
              enumerate(zip(rng.integers(0, len(adjectives), n), rng.integers(0, len(nouns), n)))]
    publish = pd.to_datetime(a.publish_s.astype(np.int64), unit="s")
    is_premium = (rng.random(n) < 0.15).astype(np.uint8)
    created = pd.Timestamp.now().floor("s")
    articles = pa.table({
        "article_id": ids.uuid_array(a.ids),
        "brand_id": ids.uuid_array(brand_ids[a.brand]),
        "author_id": ids.uuid_array(a.author_ids[a.author]),
        "category_id": ids.uuid_array(cat_ids[a.category]),
        "title": titles,
        "topic": topics.tolist(),
        "word_count": a.words.astype(np.uint32),
        "has_video": a.has_video.astype(np.uint8),
        "is_premium": is_premium,
        "publish_timestamp": pa.array(publish.values.astype("datetime64[s]")),
        "created_at": pa.array(np.full(n, created.to_datetime64()).astype("datetime64[s]")),
    })
    client.insert_arrow("editorial_articles", articles)
    client.insert_arrow("editorial_article_content", pa.table({
        "article_id": articles["article_id"],
        "content_version": pa.array(np.ones(n, dtype=np.uint32)),
        "title": titles,
        "summary": [f"{t}. A {w}-word {cat.CATEGORIES[c][1].lower()} story." for t, w, c in zip(titles, a.words, a.category)],
        "word_count": a.words.astype(np.uint32),
        "updated_at": articles["publish_timestamp"],
    }))
    client.insert_arrow("sim_articles", pa.table({
        "article_id": articles["article_id"], "quality": a.quality, "category_index": a.category.astype(np.uint8),
    }))
    start = pd.Timestamp(cfg.start - timedelta(days=PRE_WINDOW_DAYS))
    client.insert_df("editorial_authors", pd.DataFrame({
        "author_id": ids.to_uuid_list(a.author_ids),
        "brand_id": [cat.stable_id("brand", cat.BRANDS[b][0]) for b, _, _ in author_rows],
        "author_name": [name for _, _, name in author_rows],
        "primary_category_id": [cat.stable_id("category", cat.CATEGORIES[c][0]) for _, c, _ in author_rows],
        "joined_date": [(start - pd.Timedelta(days=int(d))).date() for d in rng.integers(30, 3000, len(author_rows))],
        "created_at": created,
    }))


@dataclass
class Users:
    """One batch of users with their latent traits (all arrays of the batch's length)."""

    ids: np.ndarray
    index: np.ndarray
    home_brand: np.ndarray
    combo: np.ndarray
    city: np.ndarray
    country: np.ndarray
    first_day: np.ndarray
    engaged_until: np.ndarray
    churned_on: np.ndarray
    subscribed_on: np.ndarray  # day index (negative: before the window), revenue.NEVER if never
    newsletter_on: np.ndarray  # day index, -1 if never
    activity: np.ndarray
    fading_activity: np.ndarray
    fade_hazard: np.ndarray
    churn_hazard: np.ndarray
    conversion: np.ndarray
    ad_ctr: np.ndarray
    click_affinity: np.ndarray
    prefs: np.ndarray  # (n, categories)
    commerce: revenue.Commerce  # touchpoints, subscriptions, purchases and value truth


def _geometric_days(rng, p, n):
    """Days until an event with daily probability ``p`` (0 = on the first day)."""
    u = rng.random(n)
    return np.floor(np.log(u) / np.log1p(-np.clip(p, 1e-9, 1 - 1e-9))).astype(np.int64)


def _make_users(cfg: SimulationConfig, batch: int, n: int, combos, plan: marketing.Schedule) -> Users:
    rng = np.random.default_rng([cfg.seed, batch])
    n_cats = len(cat.CATEGORIES)
    brand_share = np.cumsum([b[2] for b in cat.BRANDS])
    country_share = np.cumsum([c[4] for c in cat.COUNTRIES])
    combo_share = np.cumsum([c.share for c in combos])
    home = _categorical(rng, np.tile(brand_share / brand_share[-1], (n, 1)))
    country = _categorical(rng, np.tile(country_share / country_share[-1], (n, 1)))
    city_offsets = np.cumsum([0] + [len(c[5]) for c in cat.COUNTRIES])
    n_cities = np.diff(city_offsets)
    city = city_offsets[country] + np.floor(rng.random(n) ** 1.6 * n_cities[country]).astype(np.int64)
    combo = _categorical(rng, np.tile(combo_share / combo_share[-1], (n, 1)))
    device = np.array([c.device for c in combos])[combo]
    mobile, desktop = device == 0, device == 1

    z_act, z_loyal, z_pay, z_ad, z_click = rng.normal(size=(5, n))
    far = np.isin(country, [8, 9])  # time-zone distance makes a GB-centred publisher less sticky
    premium_home = np.array([b[3] for b in cat.BRANDS])[home] == 1
    activity = np.minimum(np.exp(-1.55 + 0.85 * z_act), 8.0)
    fade_hazard = _sigmoid(-4.4 - 0.8 * z_loyal - 0.35 * z_act + 0.7 * (mobile & (z_loyal < 0)) + 0.5 * far)
    churn_hazard = _sigmoid(-2.3 - 0.5 * z_loyal)
    fading_activity = activity * 0.3
    conversion = _sigmoid(-7.0 + 0.9 * z_pay + 0.45 * np.tanh(z_act) + 0.6 * premium_home + 0.35 * desktop)
    newsletter = _sigmoid(-5.0 + 0.7 * z_pay)
    ad_ctr = _sigmoid(-4.0 + 0.6 * z_ad - 0.3 * desktop)
    prefs = np.exp(1.3 * rng.normal(size=(n, n_cats)))
    prefs /= prefs.sum(1, keepdims=True)

    first_day = np.where(rng.random(n) < 0.35, 0, rng.integers(0, cfg.days, n))
    engaged_until = first_day + 1 + _geometric_days(rng, fade_hazard, n)
    churned_on = engaged_until + 1 + _geometric_days(rng, churn_hazard, n)
    conv_after = _geometric_days(rng, conversion, n)
    organic_on = np.where(first_day + conv_after < engaged_until, first_day + conv_after, revenue.NEVER)
    commerce = revenue.simulate_batch(cfg, plan, batch, first_day=first_day, engaged_until=engaged_until,
                                      churned_on=churned_on, organic_on=organic_on, conversion=conversion,
                                      fade_hazard=fade_hazard, activity=activity)
    nl_after = _geometric_days(rng, newsletter, n)
    newsletter_on = np.where(first_day + nl_after < churned_on, first_day + nl_after, -1)
    return Users(
        ids=ids.uuid_bytes(rng, n), index=batch * USERS_PER_BATCH + np.arange(n), home_brand=home, combo=combo,
        city=city, country=country, first_day=first_day, engaged_until=engaged_until, churned_on=churned_on,
        subscribed_on=commerce.subscribed_on, newsletter_on=newsletter_on, activity=activity, fading_activity=fading_activity,
        fade_hazard=fade_hazard, churn_hazard=churn_hazard, conversion=conversion, ad_ctr=ad_ctr,
        click_affinity=z_click, prefs=prefs, commerce=commerce,
    )


def click_probability(pref: np.ndarray, quality: np.ndarray, affinity: np.ndarray) -> np.ndarray:
    """True probability that a user clicks a teaser for an article (the click oracle)."""
    return _sigmoid(-1.7 + 5.0 * (pref - 0.1) + 0.8 * quality + 0.5 * affinity + 2.0 * pref * np.maximum(quality, 0))


def activity_multiplier(cfg: SimulationConfig, day_index: np.ndarray) -> np.ndarray:
    """Injected drift: from ``drift_at`` on, mobile-heavy usage drops activity by 40 %."""
    if cfg.drift_at is None:
        return np.ones(len(day_index))
    return np.where(day_index >= (cfg.drift_at - cfg.start).days, 0.6, 1.0)


def _make_events(cfg: SimulationConfig, u: Users, arts: Articles, bursts: Bursts, batch: int) -> tuple[pa.Table, int]:
    """Sessions and their events for one batch of users, as an Arrow table shaped like customer_events."""
    rng = np.random.default_rng([cfg.seed, batch, 2])
    n_brands = len(cat.BRANDS)
    start_s = _epoch_s(cfg.start)
    weekday0 = cfg.start.weekday()

    # user-days alive inside the window, then a Poisson number of sessions per day
    alive = np.clip(np.minimum(u.churned_on, cfg.days) - u.first_day, 0, None)
    user_of_day = np.repeat(np.arange(len(alive)), alive)
    offsets = np.repeat(np.cumsum(alive) - alive, alive)
    day = u.first_day[user_of_day] + (np.arange(len(user_of_day)) - offsets)
    engaged = day < u.engaged_until[user_of_day]
    rate = np.where(engaged, u.activity[user_of_day], u.fading_activity[user_of_day])
    rate = rate * cat.WEEKDAY_FACTOR[(weekday0 + day) % 7] * activity_multiplier(cfg, day)
    count = rng.poisson(rate)
    count = np.where(day == u.subscribed_on[user_of_day], np.maximum(count, 1), count)
    s_user = np.repeat(user_of_day, count)
    s_day = np.repeat(day, count)
    n_s = len(s_user)
    if n_s == 0:
        return None, 0
    hour = _categorical(rng, np.tile(np.cumsum(cat.HOUR_WEIGHT), (n_s, 1)))
    s_start = start_s + s_day * 86400 + hour * 3600 + rng.integers(0, 3600, n_s)
    order = np.lexsort((s_start, s_day, s_user))
    s_user, s_day, s_start = s_user[order], s_day[order], s_start[order]
    first_of_day = np.ones(n_s, dtype=bool)
    first_of_day[1:] = (s_user[1:] != s_user[:-1]) | (s_day[1:] != s_day[:-1])
    home = u.home_brand[s_user]
    s_brand = np.where(rng.random(n_s) < 0.85, home, (home + 1 + rng.integers(0, n_brands - 1, n_s)) % n_brands)
    combos = device_combos_cache()
    combo_cum = np.cumsum([c.share for c in combos])
    s_combo = np.where(rng.random(n_s) < 0.85, u.combo[s_user], _categorical(rng, np.tile(combo_cum / combo_cum[-1], (n_s, 1))))
    s_ids = ids.uuid_bytes(rng, n_s)

    # a chain of article views: each view shows a teaser that the user clicks with the oracle probability
    mix = np.array([b[4] for b in cat.BRANDS], dtype=float)
    weights = u.prefs[s_user] * (mix / mix.sum(1, keepdims=True))[s_brand]
    for j in range(len(bursts.brand)):  # a news event turns readers to its category
        weights[:, bursts.category[j]] *= bursts.boost(j, s_brand, s_start)
    cum = np.cumsum(weights / weights.sum(1, keepdims=True), 1)
    cand_cat = _categorical(rng, cum[:, None, :].repeat(MAX_STEPS, 1))
    cand = _choose_articles(rng, arts, bursts, s_brand, s_start, cand_cat)
    pref = np.take_along_axis(u.prefs[s_user], cand_cat, 1)
    p_click = click_probability(pref, arts.quality[cand], u.click_affinity[s_user][:, None])
    clicked = rng.random((n_s, MAX_STEPS)) < p_click
    views = 1 + np.cumprod(clicked[:, 1:], 1).sum(1)
    views = np.where(rng.random(n_s) < 0.12, 0, views)  # bounces see only the landing page

    # article views and what happens on each
    step = np.arange(MAX_STEPS)[None, :]
    is_view = step < views[:, None]
    quality = arts.quality[cand]
    engagement = np.minimum(np.exp(np.log(45) + 0.35 * quality + 0.3 * np.log(arts.words[cand] / 700) + rng.normal(0, 0.45, (n_s, MAX_STEPS))), 1800)
    scroll = np.clip(_sigmoid(0.4 + 0.8 * quality + rng.normal(0, 0.6, (n_s, MAX_STEPS))), 0.05, 1.0)
    view_at = s_start[:, None] + 5 + np.concatenate([np.zeros((n_s, 1)), np.cumsum(engagement[:, :-1] + 8, 1)], 1)
    vs, vj = np.nonzero(is_view)
    v_art, v_at, v_eng = cand[vs, vj], view_at[vs, vj], engagement[vs, vj]

    parts = []

    def add(sess, at_s, kind, art=None, eng=None, scr=None, placement=None, revenue=None):
        k = len(sess)
        parts.append(dict(
            sess=sess, at_ms=np.round(at_s * 1000).astype(np.int64), kind=np.full(k, EVENT_TYPES.index(kind)),
            art=art if art is not None else np.full(k, -1), eng=eng if eng is not None else np.zeros(k),
            scroll=scr if scr is not None else np.zeros(k), placement=placement if placement is not None else np.full(k, -1),
            revenue=revenue if revenue is not None else np.zeros(k), ref=np.zeros(k, dtype=np.int64),
        ))

    add(np.arange(n_s), s_start.astype(float), "page_view")
    add(vs, v_at, "article_view", v_art, v_eng, scroll[vs, vj])
    shows_teaser = vj + 1 < MAX_STEPS
    ts, tj = vs[shows_teaser], vj[shows_teaser]
    add(ts, v_at[shows_teaser] + v_eng[shows_teaser] + 2, "article_impression", cand[ts, tj + 1])
    took = tj + 1 < views[ts]
    add(ts[took], v_at[shows_teaser][took] + v_eng[shows_teaser][took] + 4, "click", cand[ts[took], tj[took] + 1])
    placement = _categorical(rng, np.tile(np.cumsum(cat.AD_PLACEMENT_SHARE), (len(vs), 1)))
    add(vs, v_at + 1, "ad_impression", v_art, placement=placement, revenue=cat.AD_CPM_EUR[placement] / 1000)
    ad_click = rng.random(len(vs)) < u.ad_ctr[s_user[vs]] * cat.AD_PLACEMENT_CTR_LIFT[placement]
    add(vs[ad_click], v_at[ad_click] + 3, "ad_click", v_art[ad_click], placement=placement[ad_click],
        revenue=np.full(ad_click.sum(), cat.AD_CLICK_EUR))
    video = arts.has_video[v_art] & (rng.random(len(vs)) < 0.25 + 1.5 * pref[vs, vj])
    add(vs[video], v_at[video] + 10, "video_play", v_art[video], v_eng[video] * 0.5)
    signup = np.nonzero(first_of_day & (s_day == u.newsletter_on[s_user]))[0]
    add(signup, s_start[signup] + 30.0, "newsletter_signup")
    subscribe = np.nonzero(first_of_day & (s_day == u.subscribed_on[s_user]))[0]
    add(subscribe, s_start[subscribe] + 60.0, "subscription", revenue=u.commerce.start_price[s_user[subscribe]])

    # where each visit came from: social feeds favour appealing articles (the landing article's appeal raises the odds
    # of a social referral, x1.8 per unit); newsletter visits only from signed-up readers; views after the landing
    # one are internal. Shares: 1-2 % of views, more for appealing articles and for readers who finished them.
    p_social = _sigmoid(np.log(0.18 / 0.82) + 0.6 * quality[:, 0])
    signed_up = (u.newsletter_on[s_user] >= 0) & (s_day > u.newsletter_on[s_user])
    pick, rest = rng.random(n_s), rng.random(n_s)
    source = np.where(pick < p_social, REFERRERS.index("social"),
                      np.where(signed_up & (rest < 0.25), REFERRERS.index("newsletter"),
                               np.where(rest < 0.6, REFERRERS.index("direct"), REFERRERS.index("search"))))
    parts[0]["ref"] = source  # the page view
    parts[1]["ref"] = np.where(vj == 0, source[vs], REFERRERS.index("internal"))  # the article views
    shared = rng.random(len(vs)) < _sigmoid(-5.6 + 0.9 * quality[vs, vj] + 1.0 * (scroll[vs, vj] >= 0.75))
    add(vs[shared], v_at[shared] + v_eng[shared] + 1, "share", v_art[shared])

    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _events_table(ev, u, s_user, s_brand, s_combo, s_ids, arts, rng), n_s


def _choose_articles(rng, arts: Articles, bursts: Bursts, s_brand, s_start, cand_cat) -> np.ndarray:
    """The article read at each step: of ``CANDIDATES`` recent articles of the step's category, one drawn with weight
    exp(appeal), times the boost of a burst on its topic: what makes an article's views follow its latent appeal."""
    n_s, n_cats = len(s_brand), len(cat.CATEGORIES)
    chosen = np.empty((n_s, MAX_STEPS), dtype=np.int64)
    for lo in range(0, n_s, 100_000):  # bounded memory: a slice of sessions at a time
        hi = min(n_s, lo + 100_000)
        # news ages fast: half of what is read is hours old (the front page), half days old (search, links, feeds)
        shape = (hi - lo, MAX_STEPS, CANDIDATES)
        age_s = np.minimum(rng.exponential(np.where(rng.random(shape) < 0.5, 1 / 3, 1.5)), 20) * 86400
        group = (s_brand[lo:hi, None] * n_cats + cand_cat[lo:hi])[:, :, None]
        cand = arts.pick(np.broadcast_to(group, age_s.shape), s_start[lo:hi, None, None] - age_s)
        weight = np.exp(arts.quality[cand])
        first, last = s_start[lo:hi].min(), s_start[lo:hi].max()
        for j in np.nonzero((bursts.start_s <= last) & (bursts.end_s > first))[0]:
            boost = bursts.boost(j, s_brand[lo:hi], s_start[lo:hi])
            weight *= np.where(arts.topic[cand] == bursts.topic[j], boost[:, None, None], 1.0)
        cum = np.cumsum(weight, 2)
        pick = (rng.random((hi - lo, MAX_STEPS, 1)) * cum[:, :, -1:] > cum).sum(2).clip(0, CANDIDATES - 1)
        chosen[lo:hi] = np.take_along_axis(cand, pick[:, :, None], 2)[:, :, 0]
    return chosen


_COMBOS = None


def device_combos_cache():
    global _COMBOS
    if _COMBOS is None:
        _COMBOS = cat.device_combos()
    return _COMBOS


def _reference_tables():
    combos = device_combos_cache()
    brand_ids = ids.uuid_table([cat.stable_id("brand", b[0]) for b in cat.BRANDS])
    cat_ids = ids.uuid_table([cat.stable_id("category", c[0]) for c in cat.CATEGORIES])
    device_ids = ids.uuid_table([cat.stable_id("device", cat.DEVICES[c.device][0]) for c in combos])
    os_ids = ids.uuid_table([cat.stable_id("os", f"{cat.DEVICES[c.device][0]}:{c.os}") for c in combos])
    browser_ids = ids.uuid_table([cat.stable_id("browser", c.browser) for c in combos])
    city_ids = ids.uuid_table([cat.stable_id("city", f"{code}:{city}") for code, _, _, _, _, cities in cat.COUNTRIES for city, _ in cities])
    return brand_ids, cat_ids, device_ids, os_ids, browser_ids, city_ids


def _events_table(ev, u, s_user, s_brand, s_combo, s_ids, arts, rng) -> pa.Table:
    brand_ids, cat_ids, device_ids, os_ids, browser_ids, city_ids = _reference_tables()
    n = len(ev["sess"])
    sess = ev["sess"]
    has_art = ev["art"] >= 0
    art = np.where(has_art, ev["art"], 0)
    user = s_user[sess]
    combo = s_combo[sess]
    countries = np.array([c[0] for c in cat.COUNTRIES])
    placements = pa.array(["", *cat.AD_PLACEMENTS])
    return pa.table({
        "event_id": ids.uuid_array(ids.uuid_bytes(rng, n)),
        "session_id": ids.uuid_array(s_ids[sess]),
        "user_id": ids.uuid_array(u.ids[user]),
        "brand_id": ids.uuid_array(brand_ids[s_brand[sess]]),
        "event_type": pa.DictionaryArray.from_arrays(pa.array(ev["kind"].astype(np.int32)), pa.array(EVENT_TYPES)),
        "event_timestamp": pa.array(ev["at_ms"], type=pa.timestamp("ms", tz="UTC")),
        "article_id": ids.uuid_array(arts.ids[art], has_art),
        "category_id": ids.uuid_array(cat_ids[arts.category[art]], has_art),
        "author_id": ids.uuid_array(arts.author_ids[arts.author[art]], has_art),
        "device_type_id": ids.uuid_array(device_ids[combo]),
        "os_id": ids.uuid_array(os_ids[combo]),
        "browser_id": ids.uuid_array(browser_ids[combo]),
        "country_code": pa.DictionaryArray.from_arrays(pa.array(u.country[user].astype(np.int32)), pa.array(countries)),
        "city_id": ids.uuid_array(city_ids[u.city[user]]),
        "engagement_seconds": ev["eng"].astype(np.float32),
        "scroll_depth": ev["scroll"].astype(np.float32),
        "ad_placement": pa.DictionaryArray.from_arrays(pa.array((ev["placement"] + 1).astype(np.int32)), placements),
        "revenue": ev["revenue"].astype(np.float64),
        "referrer": pa.DictionaryArray.from_arrays(pa.array(ev["ref"].astype(np.int32)), pa.array(REFERRERS)),
    })


SESSIONS_FROM_EVENTS = """
INSERT INTO customer_sessions
SELECT
    session_id,
    any(user_id),
    any(brand_id),
    min(event_timestamp) AS session_start,
    max(event_timestamp + toIntervalMillisecond(toInt64(engagement_seconds * 1000))) AS session_end,
    (toUnixTimestamp64Milli(session_end) - toUnixTimestamp64Milli(session_start)) / 1000.0,
    count(),
    countIf(event_type = 'page_view'),
    countIf(event_type = 'article_view'),
    countIf(event_type = 'click'),
    countIf(event_type = 'video_play'),
    countIf(event_type = 'newsletter_signup'),
    countIf(event_type = 'subscription'),
    countIf(event_type = 'ad_impression'),
    countIf(event_type = 'ad_click'),
    sumIf(revenue, event_type IN ('ad_impression', 'ad_click')),
    sumIf(engagement_seconds, event_type = 'article_view'),
    avgIf(scroll_depth, event_type = 'article_view'),
    groupUniqArrayIf(assumeNotNull(category_id), event_type = 'article_view'),
    any(device_type_id), any(os_id), any(browser_id), any(country_code), any(city_id)
FROM {staging:Identifier}
GROUP BY session_id
"""

CONTENT_EVENTS_FROM_EVENTS = """
INSERT INTO editorial_content_events (event_id, session_id, user_id, brand_id, article_id, author_id, category_id, event_type,
                                      event_timestamp, engagement_seconds, scroll_depth, referrer)
SELECT event_id, session_id, user_id, brand_id, assumeNotNull(article_id), assumeNotNull(author_id),
       assumeNotNull(category_id), event_type, event_timestamp, engagement_seconds, scroll_depth, referrer
FROM {staging:Identifier}
WHERE article_id IS NOT NULL AND event_type IN ('article_view', 'article_impression', 'click', 'video_play', 'share')
"""


def _users_table(cfg: SimulationConfig, u: Users) -> pa.Table:
    brand_ids = ids.uuid_table([cat.stable_id("brand", b[0]) for b in cat.BRANDS])
    to_date = lambda days: pa.array((np.datetime64(cfg.start) + days.astype("timedelta64[D]")).astype("datetime64[D]"))
    maybe_date = lambda days: pa.array((np.datetime64(cfg.start) + np.where(days == revenue.NEVER, 0, days).astype("timedelta64[D]")).astype("datetime64[D]"), mask=days == revenue.NEVER)
    return pa.table({
        "user_id": ids.uuid_array(u.ids),
        "user_index": u.index.astype(np.uint32),
        "home_brand_id": ids.uuid_array(brand_ids[u.home_brand]),
        "first_day": to_date(u.first_day),
        "engaged_until": to_date(u.engaged_until),
        "churned_on": to_date(u.churned_on),
        "subscribed_on": maybe_date(u.subscribed_on),
        "newsletter_on": maybe_date(np.where(u.newsletter_on < 0, revenue.NEVER, u.newsletter_on)),
        "activity_rate": u.activity,
        "fading_activity_rate": u.fading_activity,
        "fade_hazard": u.fade_hazard,
        "churn_hazard": u.churn_hazard,
        "conversion_rate": u.conversion,
        "ad_responsiveness": u.ad_ctr,
        "click_affinity": u.click_affinity,
        "topic_preferences": pa.array(list(u.prefs.astype(np.float32)), type=pa.list_(pa.float32())),
    })


RUN_ROW = ("INSERT INTO sim_runs (run_id, seed, users, days, start_date, parameters, completed) SELECT {run:UUID}, "
           "{seed:UInt64}, {users:UInt32}, {days:UInt32}, {start:Date}, {parameters:String}, {completed:UInt8}")
# a simulation that started replacing the data and did not finish: (started at) of the one in the warehouse, if any
UNFINISHED = "SELECT min(created_at) FROM sim_runs GROUP BY run_id HAVING max(completed) = 0"


def unfinished(client: Client):
    """When a simulation started replacing the data and never finished (killed), its start; else None."""
    if not table_exists(client, "sim_runs"):  # (the simulator never ran here)
        return None
    rows = client.query(UNFINISHED).result_rows
    return rows[0][0] if rows else None


def simulate(client: Client, cfg: SimulationConfig, progress=None) -> dict:
    """Replace the warehouse's data with a simulated publisher; returns row counts.

    ``progress(done_users, total_users)`` is called after each batch. Model registry and
    prediction tables (``ml_*``) are left alone.
    """
    cfg.validate()
    schema.create_simulator_tables(client)
    for table in DATA_TABLES:
        client.command(f"TRUNCATE TABLE IF EXISTS {table}")
    params = {k: (str(v) if isinstance(v, date) else v) for k, v in asdict(cfg).items()}
    run = {"run": str(uuid.uuid4()), "seed": cfg.seed, "users": cfg.users, "days": cfg.days, "start": cfg.start,
           "parameters": json.dumps(params)}
    client.command(RUN_ROW, parameters={**run, "completed": 0})  # until the row below: `status` says incomplete
    now = pd.Timestamp.now().floor("s")
    for table, frame in cat.reference_frames(now).items():
        client.insert_df(table, frame)
    plan = marketing.schedule(cfg.seed, cfg.days)
    for table, rows in revenue.fixed_tables(cfg, plan).items():
        client.insert_arrow(table, rows)
    bursts = _make_bursts(cfg)
    articles = _make_articles(cfg, client, bursts)
    staging = scratch_table(client, "sim_events")
    client.command(f"CREATE TABLE {staging} AS customer_events ENGINE = Memory")
    combos = device_combos_cache()
    sessions = 0

    def generate(batch: int, first: int):
        users = _make_users(cfg, batch, min(USERS_PER_BATCH, cfg.users - first), combos, plan)
        return users, *_make_events(cfg, users, articles, bursts, batch)

    starts = list(range(0, cfg.users, USERS_PER_BATCH))
    # numpy generation of the next batch overlaps the warehouse work on this one; at most
    # two batches are in memory at a time.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ownlens-sim") as pool:
        try:
            pending = pool.submit(generate, 0, 0)
            for batch, first in enumerate(starts):
                users, events, n_sessions = pending.result()
                if batch + 1 < len(starts):
                    pending = pool.submit(generate, batch + 1, starts[batch + 1])
                client.insert_arrow("sim_users", _users_table(cfg, users))
                brand_ids = ids.uuid_table([cat.stable_id("brand", b[0]) for b in cat.BRANDS])[users.home_brand]
                for table, rows in revenue.batch_tables(cfg, plan, batch, users.commerce, users.ids, brand_ids).items():
                    client.insert_arrow(table, rows)
                if events is not None:
                    # many small record batches insert several times faster than one huge one
                    client.insert_arrow(staging, pa.Table.from_batches(events.to_batches(max_chunksize=65536)))
                    client.command(f"INSERT INTO customer_events SELECT * FROM {staging}")
                    client.command(SESSIONS_FROM_EVENTS, parameters={"staging": staging})
                    client.command(CONTENT_EVENTS_FROM_EVENTS, parameters={"staging": staging})
                    client.command(f"TRUNCATE TABLE {staging}")
                sessions += n_sessions
                if progress:
                    progress(first + len(users.ids), cfg.users)
        finally:
            drop_scratch(client, staging)
    client.command(RUN_ROW, parameters={**run, "completed": 1})
    return {
        "users": cfg.users,
        "articles": len(articles.group),
        "sessions": int(client.command("SELECT count() FROM customer_sessions")),
        "events": int(client.command("SELECT count() FROM customer_events")),
        "from": cfg.start.isoformat(),
        "to": (cfg.end - timedelta(days=1)).isoformat(),
    }
