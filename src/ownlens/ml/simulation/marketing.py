"""The simulated publisher's paid marketing: channels with true per-touch effects and true response curves, campaign
flights with daily spend, and each reader's touchpoints.

How it works (the truth ``sim_channel_truth`` records): on each day a reader is in the window, channel ``c`` touches
them a Poisson number of times with mean ``reach * touches(spend_c(d))``, where ``touches`` is a Hill curve of the
day's spend (diminishing returns) and ``reach`` grows with the reader's activity (active readers see more ads, so
touches and organic conversions are correlated, as in real logs). Each touch of a reader who is engaged and not yet
subscribed converts them with the channel's ``conversion_per_touch``, independently of their organic conversion
hazard. So the expected daily conversion hazard from marketing is ``reach * hazard(d)`` with
``hazard(d) = sum_c touches_c(spend_c(d)) * conversion_per_touch_c``: the oracle (``truth.py``) uses exactly this.

Spend is in EUR per day per 1,000 simulated readers (``SPEND_UNIT``), so a larger simulation is a larger market
with the same economics; the warehouse records EUR. Budgets change from one campaign flight to the next (1-4
weeks, from nothing to four times the half-saturation spend), which is what lets a fitted curve find the bend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPEND_UNIT = 1_000  # readers per unit of spend: spend_eur = level * users / SPEND_UNIT
LEVELS = np.array([0.0, 0.25, 0.5, 1.0, 1.5, 2.5, 4.0])  # a flight's daily budget, in half-saturation spends
DAILY_NOISE = 0.15  # day-to-day deviation of spend from the flight's budget


@dataclass(frozen=True)
class Channel:
    """One paid channel's true economics."""

    code: str
    name: str
    touches_at_saturation: float  # touches per reader-day at unlimited spend
    half_saturation: float  # daily spend (EUR per 1,000 readers) that buys half of that
    shape: float  # Hill exponent: > 1 is S-shaped (a threshold before spend works)
    conversion_per_touch: float  # P(a touch converts an engaged, unsubscribed reader)

    def touches(self, spend) -> np.ndarray:
        """Expected touches per reader-day at a daily spend (EUR per 1,000 readers)."""
        s = np.maximum(np.asarray(spend, dtype=float), 0.0) ** self.shape
        return self.touches_at_saturation * s / (s + self.half_saturation ** self.shape)


# effect sizes in the range of published paid-media studies: search and affiliates convert intent (1-3 % per
# click-through touch), social and display reach many more people at a fraction of a per cent (display about 0.1 %)
CHANNELS = (
    Channel("paid_search", "Paid search", 0.020, 4.0, 1.2, 0.025),
    Channel("paid_social", "Paid social", 0.120, 6.0, 1.6, 0.006),
    Channel("display", "Display", 0.250, 8.0, 1.0, 0.0015),
    Channel("affiliate", "Affiliates", 0.015, 2.0, 1.4, 0.020),
    Channel("email", "Email", 0.050, 0.5, 1.0, 0.012),
    Channel("podcast", "Podcast ads", 0.030, 3.0, 2.0, 0.005),
)
CODES = [c.code for c in CHANNELS]


@dataclass(frozen=True)
class Campaign:
    channel: int
    first_day: int
    last_day: int  # inclusive
    level: float  # daily budget, EUR per 1,000 readers
    name: str


@dataclass(frozen=True)
class Schedule:
    """Every channel's daily spend (EUR per 1,000 readers) and the campaign flights it comes from."""

    spend: np.ndarray  # (channels, days)
    campaigns: tuple[Campaign, ...]

    def hazard(self) -> np.ndarray:
        """Expected converting touches per unit of reach on each day: the marketing part of the conversion hazard."""
        return sum(c.touches(self.spend[i]) * c.conversion_per_touch for i, c in enumerate(CHANNELS))


def schedule(seed: int, days: int) -> Schedule:
    """The flights and daily spend of a simulation (the same for the same seed and length)."""
    rng = np.random.default_rng([seed, 4_004])
    spend = np.zeros((len(CHANNELS), days))
    campaigns = []
    for i, ch in enumerate(CHANNELS):
        d, n = 0, 0
        while d < days:
            length = int(rng.integers(7, 29))
            level = float(rng.choice(LEVELS)) * ch.half_saturation
            last = min(days, d + length) - 1
            if level > 0:
                spend[i, d:last + 1] = level * np.exp(rng.normal(0, DAILY_NOISE, last + 1 - d))
                n += 1
                campaigns.append(Campaign(i, d, last, level, f"{ch.name} flight {n}"))
            d = last + 1
    return Schedule(spend, tuple(campaigns))


def reach(activity) -> np.ndarray:
    """How exposed a reader is to paid media relative to the typical reader: active readers see more of it."""
    return np.clip(np.sqrt(np.asarray(activity, dtype=float) / 0.3), 0.2, 3.0)


def touches(rng: np.random.Generator, plan: Schedule, user_of_day: np.ndarray, day: np.ndarray, user_reach: np.ndarray):
    """Every touch of the given reader-days: (reader, day, channel, converts) arrays, in no particular order.

    ``converts`` is the touch's own conversion draw; whether it converts anyone depends on the reader being engaged
    and unsubscribed that day, which the caller decides.
    """
    out_user, out_day, out_channel, out_converts = [], [], [], []
    for i, ch in enumerate(CHANNELS):
        mean = user_reach[user_of_day] * ch.touches(plan.spend[i, day])
        count = rng.poisson(mean)
        u, d = np.repeat(user_of_day, count), np.repeat(day, count)
        out_user.append(u)
        out_day.append(d)
        out_channel.append(np.full(len(u), i))
        out_converts.append(rng.random(len(u)) < ch.conversion_per_touch)
    return tuple(np.concatenate(x) for x in (out_user, out_day, out_channel, out_converts))
