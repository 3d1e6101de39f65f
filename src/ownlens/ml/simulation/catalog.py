"""The simulated publisher's fixed world: company, brands, categories, geography and devices, with stable ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

_NAMESPACE = uuid.UUID("6f1c2a52-7d1e-4c55-9a0b-0e5b7d2f3a10")

if TYPE_CHECKING:  # annotations only; imported lazily where used
    import pandas as pd


def stable_id(kind: str, key: str) -> uuid.UUID:
    """A UUID that is the same in every simulation for the same reference row."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


COMPANY = ("OwnLens Media Group", "GB")

# code, name, share of users, is_premium, per-category publishing weights (same order as CATEGORIES)
BRANDS = [
    ("DCH", "The Daily Chronicle", 0.48, 1, [5, 4, 3, 2, 2, 2, 1, 1, 1, 3]),
    ("TPL", "Tech Pulse", 0.30, 0, [1, 0.3, 2, 6, 0.2, 0.5, 3, 0.5, 0.3, 1]),
    ("SPA", "Sport Arena", 0.22, 0, [1, 0.2, 0.5, 0.3, 8, 1, 0.2, 1, 0.5, 1]),
]

# code, name, topics used for titles
CATEGORIES = [
    ("news", "News", ["Elections", "Transport", "Housing", "Weather", "Courts"]),
    ("politics", "Politics", ["Parliament", "Budget", "Diplomacy", "Campaigns"]),
    ("business", "Business", ["Markets", "Startups", "Energy", "Retail", "Banking"]),
    ("technology", "Technology", ["AI", "Smartphones", "Cybersecurity", "Chips", "Space"]),
    ("sport", "Sport", ["Football", "Tennis", "Cycling", "Athletics", "Formula 1"]),
    ("culture", "Culture", ["Film", "Music", "Books", "Theatre", "Art"]),
    ("science", "Science", ["Climate", "Medicine", "Physics", "Biology"]),
    ("health", "Health", ["Nutrition", "Fitness", "Mental health", "Sleep"]),
    ("travel", "Travel", ["City breaks", "Rail journeys", "Islands", "Food trips"]),
    ("opinion", "Opinion", ["Columns", "Letters", "Editorials"]),
]

# every topic as (category index, topic name): an article's topic is an index into this list
TOPICS = [(c, topic) for c, (_, _, topics) in enumerate(CATEGORIES) for topic in topics]
FIRST_TOPIC = np.cumsum([0] + [len(topics) for _, _, topics in CATEGORIES])[:-1]  # of each category

# code, name, continent, timezone, share of users, cities (name, population)
COUNTRIES = [
    ("GB", "United Kingdom", "Europe", "Europe/London", 0.34, [("London", 8900000), ("Manchester", 550000), ("Birmingham", 1140000), ("Glasgow", 630000), ("Leeds", 790000)]),
    ("US", "United States", "North America", "America/New_York", 0.18, [("New York", 8300000), ("Los Angeles", 3900000), ("Chicago", 2700000), ("Austin", 960000)]),
    ("DE", "Germany", "Europe", "Europe/Berlin", 0.10, [("Berlin", 3600000), ("Hamburg", 1800000), ("Munich", 1500000)]),
    ("FR", "France", "Europe", "Europe/Paris", 0.08, [("Paris", 2100000), ("Lyon", 520000), ("Marseille", 870000)]),
    ("IE", "Ireland", "Europe", "Europe/Dublin", 0.06, [("Dublin", 550000), ("Cork", 210000)]),
    ("ES", "Spain", "Europe", "Europe/Madrid", 0.05, [("Madrid", 3300000), ("Barcelona", 1600000)]),
    ("NL", "Netherlands", "Europe", "Europe/Amsterdam", 0.05, [("Amsterdam", 870000), ("Rotterdam", 650000)]),
    ("CA", "Canada", "North America", "America/Toronto", 0.05, [("Toronto", 2800000), ("Vancouver", 680000)]),
    ("AU", "Australia", "Oceania", "Australia/Sydney", 0.04, [("Sydney", 5300000), ("Melbourne", 5000000)]),
    ("IN", "India", "Asia", "Asia/Kolkata", 0.05, [("Mumbai", 12400000), ("Bengaluru", 8400000), ("Delhi", 11000000)]),
]

# device name, share, [(os name, share within device, [(browser, share within os)])]
DEVICES = [
    ("mobile", 0.58, [
        ("iOS", 0.45, [("Safari", 0.8), ("Chrome", 0.2)]),
        ("Android", 0.55, [("Chrome", 0.75), ("Samsung Internet", 0.2), ("Firefox", 0.05)]),
    ]),
    ("desktop", 0.33, [
        ("Windows", 0.62, [("Chrome", 0.6), ("Edge", 0.3), ("Firefox", 0.1)]),
        ("macOS", 0.32, [("Safari", 0.5), ("Chrome", 0.45), ("Firefox", 0.05)]),
        ("Linux", 0.06, [("Firefox", 0.6), ("Chrome", 0.4)]),
    ]),
    ("tablet", 0.09, [
        ("iPadOS", 0.6, [("Safari", 0.9), ("Chrome", 0.1)]),
        ("Android", 0.4, [("Chrome", 0.9), ("Samsung Internet", 0.1)]),
    ]),
]

AD_PLACEMENTS = ["top_banner", "in_article", "sidebar", "footer"]
AD_PLACEMENT_CTR_LIFT = np.array([1.0, 1.8, 0.6, 0.4])
AD_PLACEMENT_SHARE = np.array([0.3, 0.3, 0.25, 0.15])
AD_CPM_EUR = np.array([2.5, 3.5, 1.5, 1.0])
AD_CLICK_EUR = 0.35

# sessions per weekday (Monday first) relative to the mean; the oracle uses the same numbers
WEEKDAY_FACTOR = np.array([1.06, 1.08, 1.06, 1.04, 0.98, 0.86, 0.92])
WEEKDAY_FACTOR = WEEKDAY_FACTOR / WEEKDAY_FACTOR.mean()
HOUR_WEIGHT = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.6, 1.5, 3.2, 4.0, 3.2, 2.6, 2.6,
                        3.4, 3.2, 2.4, 2.2, 2.4, 2.8, 3.3, 3.9, 4.2, 3.8, 2.8, 1.8])
HOUR_WEIGHT = HOUR_WEIGHT / HOUR_WEIGHT.sum()


@dataclass(frozen=True)
class Combo:
    """A device, operating system and browser a user can browse with."""

    device: int
    os: str
    browser: str
    share: float


def device_combos() -> list[Combo]:
    combos = []
    for d, (_, dshare, oses) in enumerate(DEVICES):
        for os_name, oshare, browsers in oses:
            for b_name, bshare in browsers:
                combos.append(Combo(d, os_name, b_name, dshare * oshare * bshare))
    return combos


def reference_frames(created_at) -> dict[str, "pd.DataFrame"]:
    """Rows for every reference table."""
    import pandas as pd

    company_id = stable_id("company", COMPANY[0])
    frames = {
        "companies": pd.DataFrame([{"company_id": company_id, "company_name": COMPANY[0], "country_code": COMPANY[1]}]),
        "brands": pd.DataFrame([
            {"brand_id": stable_id("brand", code), "company_id": company_id, "brand_name": name, "brand_code": code,
             "primary_country_code": "GB", "is_premium": premium}
            for code, name, _, premium, _ in BRANDS
        ]),
        "countries": pd.DataFrame([
            {"country_code": code, "country_name": name, "continent": cont, "timezone": tz}
            for code, name, cont, tz, _, _ in COUNTRIES
        ]),
        "cities": pd.DataFrame([
            {"city_id": stable_id("city", f"{code}:{city}"), "city_name": city, "country_code": code, "population": pop}
            for code, _, _, _, _, cities in COUNTRIES for city, pop in cities
        ]),
        "categories": pd.DataFrame([
            {"category_id": stable_id("category", code), "category_name": name, "category_code": code, "parent_category_id": None}
            for code, name, _ in CATEGORIES
        ]),
        "device_types": pd.DataFrame([{"device_type_id": stable_id("device", name), "device_type_name": name} for name, _, _ in DEVICES]),
        "operating_systems": pd.DataFrame([
            {"os_id": stable_id("os", f"{dev}:{os_name}"), "os_name": os_name, "device_type_id": stable_id("device", dev)}
            for dev, _, oses in DEVICES for os_name, _, _ in oses
        ]),
        "browsers": pd.DataFrame([
            {"browser_id": stable_id("browser", name), "browser_name": name}
            for name in sorted({b for _, _, oses in DEVICES for _, _, bs in oses for b, _ in bs})
        ]),
    }
    for frame in frames.values():
        frame["created_at"] = created_at
    return frames
