"""The simulated billing and marketing data (seed 004): consistent with the events, with each other and with the
truth the simulator records."""

from datetime import date

import pytest
from conftest import SMALL


def rows(client, sql, **params):
    return client.query(sql, parameters=params).result_rows


def test_every_conversion_in_the_events_starts_a_subscription_at_its_plan_price(sim):
    missing, wrong_price = rows(sim, """
        SELECT countIf(s.user_id = toUUID('00000000-0000-0000-0000-000000000000')), countIf(abs(e.revenue - s.amount_eur) > 0.001)
        FROM (SELECT user_id, toDate(event_timestamp) AS d, revenue FROM customer_events WHERE event_type = 'subscription') AS e
        LEFT JOIN (SELECT user_id, event_date, amount_eur FROM revenue_subscription_events WHERE event_type = 'start') AS s
          ON s.user_id = e.user_id AND s.event_date = e.d""")[0]
    assert missing == 0 and wrong_price == 0
    prices = dict(rows(sim, "SELECT plan_code, monthly_price_eur FROM revenue_subscription_plans"))
    bad = rows(sim, """SELECT count() FROM revenue_subscription_events AS e
                       INNER JOIN revenue_subscription_plans AS p ON p.plan_code = e.plan_code
                       WHERE e.event_type IN ('start', 'renewal') AND abs(e.amount_eur - p.monthly_price_eur) > 0.001""")[0][0]
    assert bad == 0 and set(prices) == {"basic", "premium", "all_access"}


def test_subscriptions_have_a_lifecycle_and_payments_match_the_charges(sim):
    counts = dict(rows(sim, "SELECT event_type, count() FROM revenue_subscription_events GROUP BY event_type"))
    assert {"start", "renewal", "cancel", "upgrade", "payment_failed"} <= set(counts)
    # nothing happens to a subscription after it is cancelled, and each is cancelled at most once
    after_cancel, twice = rows(sim, """
        SELECT countIf(max_day > cancel_day), countIf(cancels > 1) FROM (
            SELECT subscription_id, max(event_date) AS max_day, minIf(event_date, event_type = 'cancel') AS cancel_day,
                   countIf(event_type = 'cancel') AS cancels
            FROM revenue_subscription_events GROUP BY subscription_id HAVING cancels > 0)""")[0]
    assert after_cancel == 0 and twice == 0
    charged = rows(sim, "SELECT round(sum(amount_eur), 2) FROM revenue_subscription_events")[0][0]
    paid = rows(sim, "SELECT round(sum(amount_eur), 2) FROM revenue_payments WHERE kind = 'subscription'")[0][0]
    assert charged == pytest.approx(paid, abs=0.05)
    # billing history is older than the events: subscribers from before the first day, with no event of it
    first = SMALL.start
    legacy = rows(sim, "SELECT count() FROM sim_users WHERE subscribed_on < {d:Date}", d=first)[0][0]
    assert legacy > 0
    assert rows(sim, "SELECT min(event_date) FROM revenue_subscription_events")[0][0] < date(first.year - 1, first.month, first.day)
    assert rows(sim, """SELECT count() FROM customer_events WHERE event_type = 'subscription'
                        AND user_id IN (SELECT user_id FROM sim_users WHERE subscribed_on < {d:Date})""", d=first)[0][0] == 0


def test_touchpoints_come_from_running_campaigns_and_cause_the_recorded_conversions(sim):
    # every touch belongs to a campaign of its channel that ran (and spent) that day
    orphan = rows(sim, """
        SELECT count() FROM marketing_touchpoints AS t
        LEFT JOIN marketing_spend_daily AS s ON s.campaign_id = t.campaign_id AND s.spend_date = toDate(t.touched_at)
        WHERE s.spend_eur <= 0 OR s.channel_code != t.channel_code""")[0][0]
    assert orphan == 0
    causes = dict(rows(sim, "SELECT converted_by, count() FROM sim_customer_value WHERE converted_by != '' GROUP BY converted_by"))
    marketing = sum(v for k, v in causes.items() if k not in ("organic", "legacy"))
    assert 0.15 < marketing / (marketing + causes["organic"]) < 0.7
    # a reader converted by a channel was touched by it on the day they subscribed
    untouched = rows(sim, """
        SELECT count() FROM sim_customer_value AS v INNER JOIN sim_users AS u ON u.user_id = v.user_id
        WHERE v.converted_by NOT IN ('', 'organic', 'legacy') AND (v.user_id, v.converted_by, u.subscribed_on) NOT IN
              (SELECT user_id, channel_code, toDate(touched_at) FROM marketing_touchpoints)""")[0][0]
    assert untouched == 0


def test_subscriber_features_cover_every_active_subscription_and_only_the_past(sim, make_db):
    from conftest import FEATURE_DATES, copy_of

    from ownlens.ml.features.subscription import build_subscription_features

    d = FEATURE_DATES[1]
    active = rows(sim, """SELECT count() FROM (SELECT subscription_id, minIf(event_date, event_type = 'start') AS s,
                          countIf(event_type = 'cancel') AS c FROM revenue_subscription_events WHERE event_date < {d:Date}
                          GROUP BY subscription_id HAVING c = 0 AND s < {d:Date})""", d=d)[0][0]
    n, lapsed, labelled = rows(sim, """SELECT count(), countIf(sessions_last_30d = 0 AND days_since_last_session = 31),
                                      (SELECT count() FROM customer_subscription_labels WHERE feature_date = {d:Date})
                                      FROM customer_subscription_features WHERE feature_date = {d:Date}""", d=d)[0]
    assert n == active == labelled > 0 and lapsed > 0  # subscribers who stopped reading are rows too
    # nothing from d on changes them: the same features from a warehouse cut at d
    cut = copy_of(sim, make_db)
    cut.command("ALTER TABLE revenue_subscription_events DELETE WHERE event_date >= {d:Date} SETTINGS mutations_sync = 1", parameters={"d": d})
    cut.command("ALTER TABLE customer_sessions DELETE WHERE session_start >= {d:Date} SETTINGS mutations_sync = 1", parameters={"d": d})
    build_subscription_features(cut, d)
    fingerprint = ("SELECT groupBitXor(cityHash64(user_id, plan_tier, tenure_days, renewals, failed_payments, sessions_last_30d, "
                   "days_since_last_session, reading_trend)) FROM customer_subscription_features WHERE feature_date = {d:Date}")
    assert rows(cut, fingerprint, d=d) == rows(sim, fingerprint, d=d)
