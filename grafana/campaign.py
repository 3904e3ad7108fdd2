"""Campaign overview: what the campaign's posts are about, for organizers."""

from __future__ import annotations

from grafana.common import (
    LANG,
    PER_MINUTE,
    SOURCE,
    Board,
    Query,
    bars,
    cm,
    dm,
    pie,
    stat_panel,
    timeseries_panel,
)

__all__ = ["AXES", "build"]

UID = "social-campaign"

#: The codebook's two axes of themes, and the rest (docs: the default codebook).
AXES: dict[str, tuple[str, ...]] = {
    "Model value and interaction experience": (
        "user_experience", "distinctive_value", "behavior_change"),
    "Platform power and lifecycle decisions": (
        "retirement", "platform_response", "platform_legitimacy"),
    "Other: collective action, AI ethics": ("collective_action", "ai_ethics"),
}

_PER_MIN = "[$__rate_interval])) * 60"


def _axis(themes: tuple[str, ...], fn: str, window: str) -> str:
    return (f'sum({fn}(social_themes_total{{{SOURCE}, theme=~"{"|".join(themes)}"}}'
            f"[{window}]))")


def build() -> Board:
    board = Board(UID, "Social monitor: campaign overview",
                  "What the campaign's posts are about: volume by source and language, the "
                  "codebook's themes, claims and reasons, the rules that fire, the words "
                  "people use and the latest moderation flags.")
    board.source_variable()
    board.variable("lang", "Language", "social_posts_processed_total",
                   "Languages to include (the ruleset's languages, and other).")

    board.row("Volume")
    board.add(
        timeseries_panel(
            "Posts per minute by source",
            "Posts tagged per minute, by platform (summed over every monitor process). A drop "
            "to zero for one platform while others continue points at its collector: see "
            "the pipeline health dashboard.",
            [Query("sum by (source) (rate(social_posts_processed_total"
                   f"{{{SOURCE}, {LANG}}}{_PER_MIN}", "{{source}}")],
            unit=PER_MINUTE, stack=cm.StackingMode.NORMAL),
        timeseries_panel(
            "Posts per minute by language",
            "Posts tagged per minute, by the language the tagger resolved (the ruleset's "
            "languages; everything else is 'other').",
            [Query("sum by (lang) (rate(social_posts_processed_total"
                   f"{{{SOURCE}, {LANG}}}{_PER_MIN}", "{{lang}}")],
            unit=PER_MINUTE, stack=cm.StackingMode.NORMAL),
    )

    board.row("Themes")
    board.add(
        timeseries_panel(
            "Themes over time",
            "Themes given to posts per minute, stacked (a post has 0, 1 or 2 themes, so the "
            "stack can exceed the post rate). Labels are the codebook's theme ids.",
            [Query(f"sum by (theme) (rate(social_themes_total{{{SOURCE}}}{_PER_MIN}",
                   "{{theme}}")],
            unit=PER_MINUTE, stack=cm.StackingMode.NORMAL, width=12),
        pie(
            "Share of themes by axis",
            "Theme assignments in the selected time range, grouped by the codebook's two "
            "axes: model value and interaction experience (user_experience, "
            "distinctive_value, behavior_change) and platform power and lifecycle decisions "
            "(retirement, platform_response, platform_legitimacy); collective_action and "
            "ai_ethics are 'other'.",
            [Query(_axis(themes, "increase", "$__range"), axis, instant=True)
             for axis, themes in AXES.items()],
            width=6, height=8),
        timeseries_panel(
            "Axis share over time",
            "The same three groups per minute, as a share of all theme assignments (100% "
            "stacked): is the conversation moving from the model's value to the platform's "
            "power, or back?",
            [Query(_axis(themes, "rate", "$__rate_interval") + " * 60", axis)
             for axis, themes in AXES.items()],
            unit=PER_MINUTE, stack=cm.StackingMode.PERCENT, width=6),
    )

    board.row("Claims and reasons")
    board.add(
        bars(
            "Claims",
            "The primary demand of posts in the selected time range (at most one per post): "
            "access_accountability, against_overalignment, user_agency, safeguards_remedies.",
            [Query("sort_desc(sum by (claim) (increase(social_claims_total"
                   f"{{{SOURCE}}}[$__range])))", "{{claim}}", instant=True)],
            width=6),
        bars(
            "Reasons",
            "Why posts say the model should be kept (0, 1 or 2 per post), in the selected time "
            "range.",
            [Query("sort_desc(sum by (reason) (increase(social_reasons_total"
                   f"{{{SOURCE}}}[$__range])))", "{{reason}}", instant=True)],
            width=6),
        timeseries_panel(
            "Claims over time",
            "Claims per minute, stacked: a petition or a statement by the company usually "
            "shows as a shift between claims.",
            [Query(f"sum by (claim) (rate(social_claims_total{{{SOURCE}}}{_PER_MIN}",
                   "{{claim}}")],
            unit=PER_MINUTE, stack=cm.StackingMode.NORMAL, width=12, height=9),
    )

    board.row("Rules and words")
    board.add(
        bars(
            "Top rules",
            "The 15 rules that fired most in the selected time range, active and shadow-mode "
            "(rule ids from the ruleset; not split by source). A rule near the top that "
            "nobody expected is worth a look with 'monitor rules explain'.",
            [Query("topk(15, sum by (rule) (increase(social_rule_hits_total[$__range])))",
                   "{{rule}}", instant=True)],
            width=12, height=10, limit=15),
        bars(
            "Top terms",
            "The words posts use most right now: per language, the decayed number of posts "
            "using each content word (half-life 1 hour of post time; stop words, campaign "
            "hashtags and terms, mentions, numbers and links removed). Only the top 20 per "
            "language are exported; with several workers the values are summed.",
            [Query(f"topk(20, sum by (lang, term) (social_top_terms{{{LANG}}}))",
                   "{{term}} ({{lang}})", instant=True)],
            width=12, height=10, limit=20),
    )

    board.row("Moderation flags")
    flagged = stat_panel(
        "Flagged in the last hour",
        "Posts flagged in the last hour, by kind (a post can carry several flags). Any "
        "csam_risk turns red: do not open the media, follow deploy/README.md. Details on the "
        "moderation dashboard.",
        [Query(f"sum by (flag) (increase(social_flags_total{{{SOURCE}}}[1h]))", "{{flag}}")],
        width=24, height=5, thresholds=((None, "green"), (1, "orange")))
    flagged = flagged.override_by_name("csam_risk", [dm.DynamicConfigValue(
        id_val="thresholds",
        value={"mode": "absolute", "steps": [{"color": "green", "value": None},
                                             {"color": "red", "value": 1}]})])
    board.add(flagged)
    return board
