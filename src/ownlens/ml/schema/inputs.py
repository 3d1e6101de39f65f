"""The input contract: the tables OwnLens reads from a publisher's warehouse, what each column means, and how a
warehouse with its own tables is mapped onto them without copying (views).

Every other table is OwnLens's own (features, labels, predictions, the registry: written by it) or the simulator's
(``sim_*``). The names and types are the migrations' (``schema/*.sql``); this module adds the meaning and the
mapping. ``ownlens-ml contract`` prints it; ``ownlens-ml init --map FILE`` creates the views a mapping file names,
then checks them against the contract like any table.

A mapping file is JSON: ``{"customer_sessions": {"table": "analytics.sessions", "columns": {"session_id": "sid"}}}``
maps the contract table ``customer_sessions`` onto ``analytics.sessions``, reading ``session_id`` from its column
``sid`` and every other column from the column of the same name; each is cast to the contract's type. Only names
are read from the file (checked, then quoted): no SQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput


@dataclass(frozen=True)
class InputTable:
    name: str
    meaning: str
    used_by: str
    columns: dict[str, str]


_ID = "id of the {}, a UUID (any stable id mapped to one, e.g. with generateUUIDv5-like hashing upstream)"
INPUTS = (
    InputTable("companies", "The companies that own the brands.", "the reference loader (Python API)", {
        "company_id": _ID.format("company"), "company_name": "display name", "country_code": "ISO 3166-1 alpha-2",
        "created_at": "when the row was written (latest row wins)"}),
    InputTable("brands", "The publisher's titles (one warehouse may hold several).", "every model, the API's brand filter", {
        "brand_id": _ID.format("brand"), "company_id": "the owning company", "brand_name": "display name",
        "brand_code": "short code used on the command line (e.g. DCH)", "primary_country_code": "ISO 3166-1 alpha-2",
        "is_premium": "1 for a paid-first title", "created_at": "when the row was written (latest row wins)"}),
    InputTable("categories", "Content sections.", "article features, click, recommendation, trending", {
        "category_id": _ID.format("category"), "category_name": "display name", "category_code": "short code",
        "parent_category_id": "the parent section, or NULL", "created_at": "when the row was written (latest row wins)"}),
    InputTable("countries", "Countries readers come from.", "user features", {
        "country_code": "ISO 3166-1 alpha-2", "country_name": "display name", "continent": "continent name",
        "timezone": "IANA time zone", "created_at": "when the row was written (latest row wins)"}),
    InputTable("cities", "Cities readers come from.", "user features (primary city), the reference loader", {
        "city_id": _ID.format("city"), "city_name": "display name", "country_code": "ISO 3166-1 alpha-2",
        "population": "inhabitants", "created_at": "when the row was written (latest row wins)"}),
    InputTable("operating_systems", "Operating systems.", "user features, the reference loader", {
        "os_id": _ID.format("operating system"), "os_name": "display name", "device_type_id": "the device class it runs on",
        "created_at": "when the row was written (latest row wins)"}),
    InputTable("device_types", "Device classes (desktop, mobile, tablet...).", "user features", {
        "device_type_id": _ID.format("device type"), "device_type_name": "display name",
        "created_at": "when the row was written (latest row wins)"}),
    InputTable("browsers", "Browsers.", "user features", {
        "browser_id": _ID.format("browser"), "browser_name": "display name", "created_at": "when the row was written (latest row wins)"}),
    InputTable("customer_sessions", "One row per reading session: what every customer feature is computed from.",
               "features build (all customer models), subscriber health, lead scoring", {
        "session_id": _ID.format("session"), "user_id": "the reader (a UUID; anonymous readers too, by cookie)",
        "brand_id": "the brand read", "session_start": "first event (UTC)", "session_end": "last event (UTC)",
        "session_duration_sec": "end minus start, seconds", "total_events": "events in the session",
        "page_views": "page views", "article_views": "article page views", "article_clicks": "teaser clicks",
        "video_plays": "video starts", "newsletter_signups": "newsletter signups in the session",
        "subscriptions": "subscriptions started in the session (the conversion label)", "ad_impressions": "ads shown",
        "ad_clicks": "ads clicked", "ad_revenue": "ad revenue, EUR", "total_engagement_seconds": "active reading time",
        "avg_scroll_depth": "mean scroll depth of its article views, 0-1", "category_ids": "sections read",
        "device_type_id": "device class", "os_id": "operating system", "browser_id": "browser",
        "country_code": "ISO 3166-1 alpha-2 of the reader's location", "city_id": "city, or a nil UUID"}),
    InputTable("customer_events", "One row per tracked event (page view, article view, impression, click, ad, signup...).",
               "click (impressions and clicks), ad placement, trending, the stream worker", {
        "event_id": _ID.format("event"), "session_id": "its session", "user_id": "the reader", "brand_id": "the brand",
        "event_type": "page_view, article_view, article_impression, click, video_play, ad_impression, ad_click, "
                      "newsletter_signup, subscription", "event_timestamp": "UTC, milliseconds",
        "article_id": "the article, or NULL", "category_id": "the article's section, or NULL", "author_id": "or NULL",
        "device_type_id": "device class", "os_id": "operating system", "browser_id": "browser",
        "country_code": "ISO 3166-1 alpha-2", "city_id": "city, or a nil UUID", "engagement_seconds": "time on the item",
        "scroll_depth": "0-1", "ad_placement": "the slot of an ad event (e.g. top_banner), else ''",
        "revenue": "EUR earned by the event (ads), else 0", "referrer": "where the reader came from (search, social...), or ''"}),
    InputTable("editorial_authors", "Authors.", "article features", {
        "author_id": _ID.format("author"), "brand_id": "their brand", "author_name": "display name",
        "primary_category_id": "the section they mostly write for", "joined_date": "first day at the brand",
        "created_at": "when the row was written (latest row wins)"}),
    InputTable("editorial_articles", "Published articles.", "article performance, trending, click, recommendation", {
        "article_id": _ID.format("article"), "brand_id": "the brand", "author_id": "the author",
        "category_id": "the section", "title": "headline", "topic": "a topic label (trending reads it)",
        "word_count": "words", "has_video": "1 if it embeds a video", "is_premium": "1 if behind the paywall",
        "publish_timestamp": "first publication, UTC", "created_at": "when the row was written (latest row wins)"}),
    InputTable("editorial_content_events", "Article-level reading events (views, reads, shares).",
               "article performance, trending, click's category affinity", {
        "event_id": _ID.format("event"), "session_id": "its session", "user_id": "the reader", "brand_id": "the brand",
        "article_id": "the article", "author_id": "its author", "category_id": "its section",
        "event_type": "article_view, article_read, share...", "event_timestamp": "UTC, milliseconds",
        "engagement_seconds": "time on the article", "scroll_depth": "0-1", "referrer": "where the reader came from, or ''"}),
    InputTable("revenue_subscription_plans", "Subscription plans and their prices.", "customer value, health, expansion", {
        "plan_code": "the plan's code", "plan_name": "display name", "tier": "1 = cheapest; upgrades move up",
        "monthly_price_eur": "price per 30-day period"}),
    InputTable("revenue_subscription_events", "The billing life of each subscription, one row per event.",
               "customer value (sBG), health, expansion (features and labels)", {
        "subscription_id": _ID.format("subscription"), "user_id": "the subscriber", "brand_id": "the brand",
        "event_date": "the day it happened", "event_type": "start, renewal, upgrade, downgrade, payment_failed, cancel",
        "plan_code": "the plan after the event", "amount_eur": "charged by the event (start, renewal), else 0"}),
    InputTable("revenue_payments", "Every payment: subscription charges and one-off purchases.",
               "customer value (BG/NBD + Gamma-Gamma, cohort forecast)", {
        "payment_id": _ID.format("payment"), "user_id": "the customer", "brand_id": "the brand",
        "paid_at": "UTC", "kind": "subscription or purchase", "amount_eur": "EUR"}),
    InputTable("marketing_channels", "Paid marketing channels.", "attribution", {
        "channel_code": "the channel's code (e.g. paid_search)", "channel_name": "display name"}),
    InputTable("marketing_campaigns", "Campaigns, each in one channel.", "attribution (per campaign)", {
        "campaign_id": _ID.format("campaign"), "channel_code": "its channel", "campaign_name": "display name",
        "start_date": "first day", "end_date": "last day", "daily_budget_eur": "planned daily spend"}),
    InputTable("marketing_spend_daily", "What each campaign spent each day.", "attribution (response curves, budget)", {
        "spend_date": "the day", "campaign_id": "the campaign", "channel_code": "its channel", "spend_eur": "EUR"}),
    InputTable("marketing_touchpoints", "Each paid contact with a known reader (ad click-through, affiliate referral, "
               "opened email).", "attribution, lead scoring", {
        "user_id": "the reader", "touched_at": "UTC", "channel_code": "the channel", "campaign_id": "the campaign"}),
)
BY_NAME = {t.name: t for t in INPUTS}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def contract_columns(client: Client) -> dict[str, list[tuple[str, str]]]:
    """Each input table's (column, type) in the migrations' order, read from the contract database."""
    from ownlens.ml import schema

    wanted = {t.name for t in INPUTS}
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in schema.contract(client):
        if table in wanted:
            out.setdefault(table, []).append((column, type_))
    return out


def describe(client: Client) -> list[dict]:
    """The contract as rows: table, column, type, meaning (what ``ownlens-ml contract`` prints)."""
    columns = contract_columns(client)
    return [{"table": t.name, "table_meaning": t.meaning, "used_by": t.used_by, "column": c, "type": type_,
             "meaning": t.columns.get(c, "")} for t in INPUTS for c, type_ in columns.get(t.name, [])]


def _quoted(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(f"{what} {name!r} is not a plain name: use letters, digits and underscores")
    return f"`{name}`"


def read_mapping(path: Path) -> dict:
    """A mapping file, checked: contract tables onto ``database.table`` names, columns onto column names."""
    try:
        mapping = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InvalidInput(f"mapping file {path} does not exist") from None
    except ValueError as exc:
        raise InvalidInput(f"mapping file {path} is not JSON: {exc}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise InvalidInput(f"mapping file {path}: expected an object of contract tables, e.g. "
                           '{"customer_sessions": {"table": "analytics.sessions", "columns": {"session_id": "sid"}}}')
    for table, spec in mapping.items():
        if table not in BY_NAME:
            raise InvalidInput(f"mapping file {path}: {table!r} is not an input table of the contract "
                               f"(`ownlens-ml contract` lists them: {', '.join(BY_NAME)})")
        if not isinstance(spec, dict) or not isinstance(spec.get("table"), str):
            raise InvalidInput(f"mapping file {path}: {table} needs \"table\": \"database.table\"")
        unknown = [c for c in (spec.get("columns") or {}) if c not in BY_NAME[table].columns]
        if unknown:
            raise InvalidInput(f"mapping file {path}: {table} has no column(s) {unknown} in the contract")
    return mapping


def view_selects(client: Client, mapping: dict) -> dict[str, str]:
    """The SELECT of each mapped contract table's view over the named source table, each column cast to the
    contract's type; the names are checked and quoted, the types are the migrations'."""
    columns = contract_columns(client)
    selects = {}
    for table, spec in mapping.items():
        parts = spec["table"].split(".")
        if len(parts) not in (1, 2):
            raise InvalidInput(f"{table}: source {spec['table']!r} must be table or database.table")
        source = ".".join(_quoted(p, "source name") for p in parts)
        renames = spec.get("columns") or {}
        select = ", ".join(f"CAST({_quoted(renames.get(c, c), 'column')} AS {type_}) AS {c}" for c, type_ in columns[table])
        selects[table] = f"SELECT {select} FROM {source}"
    return selects


def map_tables(client: Client, mapping: dict) -> list[str]:
    """Make each table of ``mapping`` a view over its source and return them. Every view's SELECT is tried first
    (no rows read), so a source or column that is not there changes nothing; a contract table that already holds
    rows is refused (its data would be lost), an empty one replaced."""
    from ownlens.ml.warehouse import table_exists

    selects = view_selects(client, mapping)
    for table, select in selects.items():
        try:
            client.query(f"{select} LIMIT 0")
        except Exception as exc:
            raise InvalidInput(f"{table}: cannot read it from {mapping[table]['table']}: {(str(exc).splitlines() or [''])[0][:300]}") from None
        if table_exists(client, table):
            engine, rows = client.query("SELECT engine, ifNull(total_rows, 0) FROM system.tables WHERE database = currentDatabase() "
                                        "AND name = {t:String}", parameters={"t": table}).result_rows[0]
            if engine != "View" and rows:
                raise InvalidInput(f"{table} already holds {rows:,} rows: map it into a fresh database (OWNLENS_DSN ...?database=NAME), "
                                   "or drop the table first")
    for table, select in selects.items():
        if client.command("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
                          parameters={"t": table}) not in ("View", ""):  # (the reference dictionaries read it by name)
            client.command("DROP TABLE {t:Identifier} SETTINGS check_table_dependencies = 0", parameters={"t": table})
        client.command(f"CREATE OR REPLACE VIEW {_quoted(table, 'table')} AS {select}")
    return list(selects)  # (the reference dictionaries read the views from their next reload)
