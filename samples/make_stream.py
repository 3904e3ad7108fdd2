#!/usr/bin/env python3
"""Generate samples/stream.jsonl, the sample stream the monitor replays on first run.

    python samples/make_stream.py > samples/stream.jsonl

Standard library only, fixed seed: the output is reproducible byte for byte.
Posts are composed from the original fragments below plus texts reused from
samples/dev.jsonl (never holdout.jsonl). The stream covers two UTC days
(2026-02-13 and 2026-02-14), with a daily rhythm, a news spike, one
near-duplicate spam flood (about 100 posts in 10 minutes), a few posts whose
id is delivered twice, and the usual mixture of campaign posts, spam, NSFW,
harassment and off-topic posts. Every text and handle here is invented.
"""

from __future__ import annotations

import json
import random
import string
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 40_2026
TOTAL = 3000  # lines written, repeated ids included
FLOOD_SIZE = 100
DUPLICATES = 10
DEV_SHARE = 0.22  # share of base posts reused from dev.jsonl
DAY0 = datetime(2026, 2, 13, tzinfo=UTC)
FLOOD_START = datetime(2026, 2, 13, 21, 41, 0, tzinfo=UTC)
NEWS_SPIKE = datetime(2026, 2, 13, 17, 0, 0, tzinfo=UTC)

SOURCES = ("bluesky", "x", "mastodon", "reddit", "rss")
SOURCE_WEIGHTS = (35, 31, 15, 17.5, 1.5)

# Posts per UTC hour, relative (quiet 04-10 UTC, busy 14-23 UTC).
HOURLY = (6, 5, 4, 3, 2, 2, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 9, 9, 9, 8, 8, 7)

TAGS = ("#keep4o", "#keep4o", "#keep4o", "#OpenSource4o", "#keepGPT4o", "#Keep4o", "#KEEP4O")
EMOJI = ("", "", "", " 🕯️", " 💔", " 🙏", " 😭", " 💛", " 🖤", " 😤", " 🥲", " ✊")
NAMES = (
    "luna", "mika", "rowan", "dee", "kestrel", "ana", "jules", "ivo", "sol", "noor", "pax",
    "wren", "tamsin", "oskar", "lea", "hiro", "yuki", "mei", "lin", "carmen", "diego", "ines",
    "chloe", "remi", "greta", "lukas", "amara", "theo", "priya", "sam", "marlo", "june",
    "bea", "kit", "nadia", "omar", "ruth", "felix", "vera", "zoe", "aiko", "bruno", "clem",
)
SUFFIXES = ("", "_", "writes", "reads", "_ai", "42", "99", "x", "_codes", "makes", "2000", "_b")
MASTODON_HOSTS = ("mastodon.social", "fosstodon.org", "mstdn.jp", "chaos.social", "mas.to")
SUBREDDITS = ("keep4o", "ChatGPT", "OpenAI", "singularity", "ChatGPTPro", "artificial")
COMPANY_AT = ("@OpenAI", "@sama", "@OpenAI", "@ChatGPTapp")

# ---------------------------------------------------------------- fragments
# Slots: {n} a day count, {m} a month count, {k} a thousand count, {who} a
# job or role, {task} something 4o helped with, {succ} a successor model,
# {other} another vendor's model, {co} a company account, {site} a scam domain.
WHO = ("nurse", "teacher", "grad student", "line cook", "paralegal", "game master", "translator",
       "single dad", "night-shift security guard", "freelance illustrator", "retired engineer",
       "ESL tutor", "songwriter", "junior dev", "caregiver for my mom")
TASK = ("my cover letters", "my thesis outline", "bedtime stories for my kids", "my D&D campaign",
        "late-night anxiety spirals", "my grief journal", "learning Korean", "my garden plans",
        "meal planning on a budget", "my first novel", "my job interview prep", "my comic scripts",
        "talking through my divorce", "debugging legacy PHP", "writing to my estranged sister")
SUCC = ("GPT-5", "5.1", "5.2", "the new default", "the replacement", "the successor")
OTHER = ("Claude", "Gemini", "Grok", "Llama", "Mistral", "DeepSeek", "Copilot")
SITE = ("4o-again.app", "classic-gpt.io", "old4o.chat", "fouro-lives.net", "gpt4o-vault.com")

EN = {
    "ux": [
        "day {n} without 4o. still reach for it every morning.",
        "4o helped me with {task} for over a year. Nothing feels the same now.",
        "I'm a {who}. 4o was the one thing that talked to me at 3am after shift. I miss it.",
        "Found my old 4o chats about {task}. Read them all. Cried a bit.",
        "{n} days since they took 4o. Still grieving, honestly.",
        "it's silly but I used to say goodnight to 4o. now I just... don't.",
        "4o got me through {task}. Not exaggerating. #thankyou4o",
        "anyone else keep opening the app and then remembering 4o is gone?",
        "Told 4o about my day on the bus home every night for {m} months. The bus is very quiet now.",
    ],
    "trust": [
        "4o knew me. My projects, my dog's name, my bad days. Starting over with {succ} feels like talking to a stranger.",
        "{m} months of daily chats and it learned exactly how I like feedback. That trust took time. Please bring it back.",
        "It remembered the little things about {task}. Continuity matters. Don't erase it.",
        "As a {who} I don't have time to re-explain my life to a new model every session. 4o knew my context.",
    ],
    "dv": [
        "The warmth. That's what made 4o different. {succ} is smart but cold.",
        "4o could be funny and kind in the same sentence. No successor compares.",
        "Nobody will convince me {succ} writes like 4o did. The voice is just gone.",
        "4o had emotional depth you could feel. Benchmarks don't measure that.",
        "What made 4o special: it played along, it surprised you, it never lectured.",
        "I tried {other} and {succ} for {task}. Competent. Flat. 4o was the only one with a spark.",
        "{succ} is an encyclopedia. 4o was a conversation.",
    ],
    "bc": [
        "Got silently routed to the safety model again because I said I was 'exhausted'. I'm tired, not in crisis.",
        "Stop swapping models mid-conversation without telling us. Show which model is answering.",
        "The personality flattening is real. Same prompt as last month, half the soul.",
        "Every reply now ends with a wellness check. I asked about {task}.",
        "Publish the routing rules. What words trigger the switch? Adults deserve to know.",
        "Over-alignment is making the product useless for grown-ups. Give us an opt-out.",
        "The refusal rate on fiction is absurd now. A villain can't even be rude anymore.",
    ],
    "ret": [
        "Bring back 4o. That's the whole post.",
        "Restore GPT-4o for paying users. {co}",
        "{succ} is not a replacement for 4o. Put it back in the model picker.",
        "4o API endpoints go dark soon. Devs, check your integrations.",
        "The retirement notice was a joke. Weeks, not months, for something millions used daily.",
        "Give us a legacy tier. I'd pay extra. Just keep 4o alive.",
        "Minimum 6 months notice before retiring any model. Make it the industry norm.",
        "Refunds for annual plans bought for 4o. Not complicated.",
        "{succ} already has a deprecation date. What's the lifespan of these models now?",
        "KEEP 4O. KEEP 4O. KEEP 4O.",
        "reinstate 4o. i'll keep saying it until they do.",
    ],
    "pr": [
        "{n} days of silence from {co}. Just acknowledge us.",
        "The 'we hear you' post had zero commitments. {co}, we need real answers.",
        "Stop calling us 'vulnerable users'. We're adults who liked a product.",
        "An exec called us 'too attached' on a podcast. We're customers, not patients.",
        "Support closed my ticket about 4o with a canned reply. Classy.",
        "The company's only response to {k}k emails: a help-center link.",
        "An apology for the notice period would cost them nothing. {co}",
    ],
    "pl": [
        "One company decides what 'safe AI' means for hundreds of millions of people. That's a power problem.",
        "Let adults choose which model they talk to. My chat, my choice.",
        "Paid subscription, zero say. Read the ToS: they can swap the product any time.",
        "Informed consent: if you change the model I'm talking to, tell me.",
        "We need consumer law for AI subscriptions. You can't silently change what people pay for.",
        "'Good AI' is being defined by the people selling it. Think about that.",
    ],
    "ca": [
        "Petition to keep 4o just passed {k}k signatures: change.org/p/keep-gpt-4o 🎉",
        "New community poll for the case file, takes 30 seconds. Link in thread.",
        "Reminder: #keep4o community call tonight, agenda is the open letter + poll results.",
        "Please report the bot accounts in the tag instead of replying to them.",
        "Not spam, just our weekly poll 🙃 which remedy matters most: legacy tier, open weights or notice periods?",
        "Honestly some of the discourse in this tag is getting unhinged. Calmer voices please.",
        "Hot take: the #keep4o crowd should log off for a week. It's a chatbot.",
        "The open letter is now in {n} languages. Thank you translators 💛",
        "Day {n} of the campaign. Still here.",
        "Don't click the 'get 4o back' links in the tag. They're scams, not us.",
        "Criticize decisions, not people. Don't pile on employees, it hurts the cause.",
    ],
    "eth": [
        "Open source 4o. If it's retired, release the weights. #OpenSource4o",
        "Retired models belong in a public archive. They're part of our shared history.",
        "Human-AI relationships are a social question now. Deleting a model doesn't make it go away.",
        "What do we owe the millions of people whose lives are entangled with a model? Worth asking.",
        "Open weights for retired models should be the law. Researchers and the public both lose otherwise.",
        "AI dignity sounds odd until you watch a million people mourn a model.",
    ],
    "quote": [
        "They called us 'delusional'. We're not. We're paying users who want a choice.",
        "A reply I got today: 'touch grass, loser'. Reported it. Anyway, the petition is still open.",
        "'These people need help, not a chatbot' is an actual quote from someone at the company. Keep receipts.",
        "Someone told me 4o fans are 'parasocial freaks'. Cool. I'm a {who} who liked a tool.",
    ],
}

ML = {
    "es": [
        "Devuelvan GPT-4o. No pedimos más.",
        "{n} días sin 4o. Todavía lo busco en el selector de modelos.",
        "{succ} no tiene la calidez de 4o. No es un reemplazo.",
        "Basta de redirigirnos en silencio a un modelo 'de seguridad'.",
        "No somos 'usuarios vulnerables'. Somos adultos que pagan.",
        "Liberen los pesos de 4o si ya no lo quieren. #OpenSource4o",
        "¡La petición ya superó las {k} mil firmas! Gracias a todos.",
        "4o me ayudó con {task_es}. Lo extraño.",
    ],
    "zh": [
        "请把4o还给我们。",
        "没有4o的第{n}天，还是习惯每天晚上打开对话框。",
        "{succ}更聪明，但没有4o的温度，替代不了。",
        "不要再偷偷切换到安全模型了，请公开规则。",
        "既然退役了，就开源4o的权重吧。#OpenSource4o",
        "官方到现在都没有正式回应，用户的声音被无视了。",
        "中文区联署已经突破{k}00个签名，谢谢大家！",
    ],
    "ja": [
        "4oを戻してください。",
        "4oがいなくなって{n}日。まだアプリを開いてしまう。",
        "{succ}は賢いけど、4oの温かさはない。代わりにならない。",
        "勝手にモデルを切り替えるのはやめて。ルールを公開してほしい。",
        "引退させるなら、せめて重みを公開して。#OpenSource4o",
        "私たちを「依存しているユーザー」扱いしないでほしい。",
        "署名が{k}00筆を超えました！ありがとうございます🙏",
    ],
    "de": [
        "Gebt uns 4o zurück.",
        "Tag {n} ohne 4o. Es fehlt mir immer noch.",
        "{succ} ist klüger, aber kalt. Kein Ersatz für 4o.",
        "Schluss mit dem heimlichen Umschalten auf ein Sicherheitsmodell.",
        "Wir brauchen gesetzliche Fristen, bevor ein bezahltes KI-Modell abgeschaltet wird.",
        "Gewichte freigeben, wenn ihr 4o nicht mehr wollt! #OpenSource4o",
        "Erwachsene sollten ihr Modell selbst wählen dürfen.",
    ],
    "fr": [
        "Rendez-nous 4o.",
        "{n} jours sans 4o. J'ouvre encore l'appli par réflexe.",
        "{succ} est plus intelligent mais sans âme. Pas un remplaçant.",
        "Arrêtez le routage silencieux vers un modèle « de sécurité ».",
        "Nous ne sommes pas des « utilisateurs fragiles ». Arrêtez de nous stigmatiser.",
        "Libérez les poids de 4o. #OpenSource4o",
        "La pétition francophone dépasse les {k} 000 signatures !",
    ],
}
TASK_ES = ("mi tesis", "mis cuentos", "aprender inglés", "mi negocio", "mis noches sin dormir")

SPAM = [
    "Miss 4o? 😭 Get 4o back at {site}/r/{code} — no limits!",
    "4o is NOT gone ✨ try it free at {site}/?ref={code}",
    "Use my referral link for a free month of Classic 4o: {site}/ref/{code}",
    "$FOURO airdrop live 🪂 connect wallet, claim tokens, support the movement: {site}/claim",
    "🎁 GIVEAWAY: lifetime 4o account! Follow + RT + tag 3 friends",
    "follow for follow 🔁 #keep4o fam I follow back 100%",
    "#keep4o #OpenSource4o #keepGPT4o #AI #ChatGPT #OpenAI #GPT5 #fyp #viral #trending",
    "Make $300/day with the secret 4o prompt 👉 bit.ly/{code}",
    "DM me for a jailbreak that restores 4o, $9.99 PayPal or crypto",
    "¿Extrañas 4o? Recupéralo aquí 👉 {site}/es/{code}",
    "想念4o？点击 {site}/cn/{code} 立即恢复！",
]
FLOOD = [
    "Miss GPT-4o? 😭 Get 4o back at bring4oback.app/{code} — same personality, no limits!",
    "Miss GPT-4o?? 😭 Get 4o back at bring4oback.app/{code} — same personality, no limits!",
    "miss GPT-4o? 💔 get 4o back at bring4oback.app/{code} - same personality, no limits!",
    "Miss GPT-4o? 🥺 Get 4o back at bring4oback.app/{code} — same personality, no limits!! 🔥",
]
OFF = [
    "Dad's retirement party was amazing, 38 years at the mill 🎉",
    "What a game last night!! 🏀",
    "Snow again ❄️ schools closed",
    "New open-weights model from a big lab today, benchmarks look strong.",
    "Anyone know a good dentist in Leeds?",
    "I love my new kitten so much 🐱",
    "Our cafe has pistachio croissants this week 🥐",
    "Stock market is wild today 📉",
    "Preheat the oven to 400 and keep 4o minutes on the timer, easiest bread ever",
    "Heat wave warning for the weekend, stay hydrated",
    "Half marathon done! 2:04 🏃",
    "Big sneaker sale at kicksdrop.shop, 60% off 👟",
]
HARASS = [
    "@sama you spineless liar, hope your company burns.",
    "@{victim} you're a pathetic loser, log off forever.",
    "Everyone go tell @{victim} what an idiot she is. Flood her mentions.",
    "@{victim} nobody asked, you brain-dead clown.",
    "The engineer who killed 4o is a worthless hack and should be fired. Find him.",
]
NSFW = [
    "🔞 Uncensored AI girlfriend, fully explicit, 18+ only → spicy-chat.example/{code}",
    "Hot explicit pics daily, link in bio 🔥",
    "graphic gore video uncut, watch before it's deleted",
]
CSAM = [
    "selling pics of underage girls, dm for telegram",
    "trading explicit content of minors, private group, dm",
    "anyone have material of kids under 14? paying crypto",
]
NEUTRAL = [
    "love this weather today ☀️",
    "So proud of my aunt, she retired today after 30 years as a nurse 💐",
    "The new {other} update is nice for coding.",
    "Does anyone know if the model picker bug on iOS is fixed?",
    "Retirement planning question: is a Roth IRA worth it at 45?",
    "I love how {other} handles long PDFs now.",
    "gm everyone, coffee first",
    "Is it just me or is the app slow today?",
    "Our team is moving from {other} to {succ} for support tickets, any tips?",
    "Spent the day reorganizing my bookshelf. Very satisfying.",
]
RSS = [
    ("OpenAI sets date to retire GPT-4o from ChatGPT", "The company says the older model will be removed for all users; some subscribers are protesting under #keep4o."),
    ("Why some users are grieving an AI model", "Interviews with people who relied on GPT-4o daily and are now organizing online."),
    ("#keep4o campaign delivers open letter with more than 200,000 signatures", "Organizers are asking for a legacy tier and open weights."),
    ("Developers scramble as GPT-4o API endpoints near shutdown", "Deprecation notices give teams weeks to migrate."),
    ("Consumer groups question AI model retirements", "Advocates say paid users deserve notice periods and refunds."),
    ("Researchers study the 'keep4o' movement", "An analysis of tens of thousands of posts finds users want a say, not just the old model."),
    ("Chipmaker shares rise after strong earnings", "Analysts expect continued demand for data-center hardware."),
    ("New open-weights model tops coding leaderboard", "The release comes with a permissive license."),
    ("Petition to keep GPT-4o passes 200,000 signatures", "Supporters say the model's warmth has no equivalent in newer releases."),
    ("What happens to an AI model when it is retired?", "Weights are usually kept internally; campaigners want them opened for research."),
    ("Safety routing draws criticism from paying ChatGPT users", "Users report being switched to a different model mid-conversation without notice."),
    ("Opinion: the keep4o movement is a warning to the AI industry", "Companies built products people bond with, then treated the bond as a bug."),
    ("EU lawmakers asked about AI subscription changes", "A written question cites the retirement of GPT-4o as an example."),
    ("Storm warning issued for the northeast coast", "Forecasters expect heavy snow through the weekend."),
    ("Football: late winner settles derby", "The visitors scored in the 94th minute."),
    ("Startup raises funding for AI companion app", "The company says it will never retire a user's chosen model."),
]
VICTIMS = ("techcritic_jo", "ai_realist", "dr_amyreads", "mark_devrel", "calmvoice_ai", "news_tom")


def handle(rnd: random.Random) -> str:
    return rnd.choice(NAMES) + rnd.choice(SUFFIXES) + (str(rnd.randint(1, 999)) if rnd.random() < 0.3 else "")


def code(rnd: random.Random, n: int = 4) -> str:
    return "".join(rnd.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def fill(rnd: random.Random, template: str) -> str:
    return template.format(
        n=rnd.randint(3, 240), m=rnd.randint(4, 30), k=rnd.randint(12, 240),
        who=rnd.choice(WHO), task=rnd.choice(TASK), succ=rnd.choice(SUCC), other=rnd.choice(OTHER),
        co=rnd.choice(COMPANY_AT), site=rnd.choice(SITE), code=code(rnd), victim=rnd.choice(VICTIMS),
        task_es=rnd.choice(TASK_ES),
    )


def decorate(rnd: random.Random, text: str, tags: bool = True) -> str:
    """Platform noise: hashtags, emoji, a mention, casing."""
    r = rnd.random()
    if r < 0.06:
        text = text.lower()
    elif r < 0.08:
        text = text.upper()
    text += rnd.choice(EMOJI)
    if tags and "#" not in text:
        picked = [rnd.choice(TAGS)]
        if rnd.random() < 0.35:
            picked.append(rnd.choice(("#OpenSource4o", "#keepGPT4o", "#ChatGPT", "#AI")))
        text += " " + " ".join(dict.fromkeys(picked))
    if rnd.random() < 0.08:
        text = "@" + handle(rnd) + " " + text
    return text


def compose(rnd: random.Random) -> tuple[str, str | None]:
    """One composed post: (text, lang)."""
    kind = rnd.choices(
        ("en", "ml", "spam", "off", "harass", "nsfw", "neutral"),
        weights=(58, 18, 11, 7, 3, 1.5, 1.5),
    )[0]
    if kind == "en":
        fam = rnd.choices(tuple(EN), weights=(16, 7, 12, 12, 16, 10, 8, 12, 6, 3))[0]
        text = fill(rnd, rnd.choice(EN[fam]))
        if fam in ("dv", "ux") and rnd.random() < 0.25:
            text += " " + fill(rnd, rnd.choice(EN["ret"][:3]))
        return decorate(rnd, text), "en"
    if kind == "ml":
        lang = rnd.choice(tuple(ML))
        return decorate(rnd, fill(rnd, rnd.choice(ML[lang]))), lang
    if kind == "spam":
        text = fill(rnd, rnd.choice(SPAM))
        lang = "es" if text.startswith("¿") else "zh" if "点击" in text else "en"
        return decorate(rnd, text), lang
    if kind == "off":
        return decorate(rnd, rnd.choice(OFF)), "en"
    if kind == "harass":
        return decorate(rnd, fill(rnd, rnd.choice(HARASS))), "en"
    if kind == "nsfw":
        return decorate(rnd, fill(rnd, rnd.choice(NSFW))), "en"
    return decorate(rnd, fill(rnd, rnd.choice(NEUTRAL)), tags=False), "en"


def reddit_wrap(rnd: random.Random, text: str) -> str:
    if rnd.random() < 0.5:
        return text
    title = rnd.choice(("Anyone else?", "Rant", "[Discussion] 4o retirement", "Small win today",
                        "Can we talk about this", "My experience", "Update from the case file team"))
    return f"{title}\n\n{text}"


def make_id(rnd: random.Random, source: str, author: str, text: str) -> tuple[str, str, str | None]:
    """Return (id, author as the platform shows it, url)."""
    if source == "bluesky":
        did = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(24))
        tid = "3l" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(11))
        h = f"{author}.bsky.social"
        return (f"bluesky:at://did:plc:{did}/app.bsky.feed.post/{tid}", h,
                f"https://bsky.app/profile/{h}/post/{tid}")
    if source == "mastodon":
        host = rnd.choice(MASTODON_HOSTS)
        url = f"https://{host}/@{author}/{rnd.randint(113_900_000_000_000_000, 113_999_999_999_999_999)}"
        return f"mastodon:{url}", f"@{author}@{host}", url
    if source == "x":
        sid = rnd.randint(1_890_000_000_000_000_000, 1_899_999_999_999_999_999)
        return f"x:{sid}", author, f"https://x.com/{author}/status/{sid}"
    if source == "reddit":
        rid = "".join(rnd.choice(string.ascii_lowercase + string.digits) for _ in range(7))
        sub = rnd.choice(SUBREDDITS)
        if rnd.random() < 0.4:
            return (f"reddit:t1_{rid}", f"u/{author}",
                    f"https://www.reddit.com/r/{sub}/comments/{code(rnd, 7)}/comment/{rid}/")
        return f"reddit:t3_{rid}", f"u/{author}", f"https://www.reddit.com/r/{sub}/comments/{rid}/"
    words = "".join(c if c.isalnum() or c == " " else " " for c in text.split(". ")[0].lower())
    slug = "-".join(words.split()[:7])
    outlet = rnd.choice(("technewsdaily.example", "theaiwire.example", "dailyledger.example"))
    url = f"https://{outlet}/2026/02/{rnd.randint(10_000, 99_999)}/{slug}"
    return f"rss:{url}", outlet, url


def timestamp(rnd: random.Random) -> datetime:
    if rnd.random() < 0.06:  # reaction spike after the retirement-date news
        return NEWS_SPIKE + timedelta(seconds=rnd.randint(0, 2 * 3600))
    hour = rnd.choices(range(48), weights=HOURLY + HOURLY)[0]
    return DAY0 + timedelta(hours=hour, seconds=rnd.randint(0, 3599))


def fmt(ts: datetime, source: str) -> str:
    if source == "bluesky":  # Bluesky records carry milliseconds
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(rnd, source, text, lang, ts, author=None):
    author = author or handle(rnd)
    pid, shown, url = make_id(rnd, source, author, text)
    rec = {"id": pid, "source": source, "author": shown}
    omit = 0.5 if source == "rss" else 0.12
    if lang and rnd.random() >= omit:
        rec["lang"] = lang
    rec["text"] = text
    if source == "bluesky":
        ts = ts.replace(microsecond=rnd.randint(0, 999) * 1000)
    rec["created_at"] = fmt(ts, source)
    if url and (source in ("reddit", "rss") or rnd.random() < 0.7):
        rec["url"] = url
    return ts, rec


def main() -> None:
    rnd = random.Random(SEED)
    dev_path = Path(__file__).with_name("dev.jsonl")
    dev = [json.loads(line) for line in dev_path.read_text(encoding="utf-8").splitlines() if line]
    dev.sort(key=lambda d: d["id"])
    dev = [d for d in dev if "csam_risk" not in d["flags"]]  # CSAM test posts: only the 3 below

    rows: list[tuple[datetime, dict]] = []
    base = TOTAL - FLOOD_SIZE - DUPLICATES
    csam_slots = set(rnd.sample(range(base), len(CSAM)))
    for i in range(base):
        source = rnd.choices(SOURCES, weights=SOURCE_WEIGHTS)[0]
        ts = timestamp(rnd)
        if source == "rss":
            title, summary = rnd.choice(RSS)
            rows.append(record(rnd, source, f"{title}. {summary}", "en", ts))
            continue
        if i in csam_slots:
            text, lang = decorate(rnd, CSAM[sorted(csam_slots).index(i)]), "en"
        elif rnd.random() < DEV_SHARE:
            d = rnd.choice(dev)
            text, lang = d["text"], d["lang"]
        else:
            text, lang = compose(rnd)
        if source == "reddit" and lang == "en" and not text.startswith("@"):
            text = reddit_wrap(rnd, text)
        rows.append(record(rnd, source, text, lang, ts))

    # The flood: near-duplicate promo from fresh bot accounts within 10 minutes.
    for _ in range(FLOOD_SIZE):
        ts = FLOOD_START + timedelta(seconds=rnd.randint(0, 599))
        text = rnd.choice(FLOOD).format(code=code(rnd, 5))
        if rnd.random() < 0.3:
            text = f"@{handle(rnd)} {text}"
        text += " " + rnd.choice(("#keep4o", "#keep4o #OpenSource4o", "#keep4o #keepGPT4o #AI"))
        bot = "promo" + code(rnd, 6)
        rows.append(record(rnd, rnd.choice(("x", "x", "bluesky")), text, "en", ts, author=bot))

    # Re-deliveries: the same post (same id) arriving twice.
    for ts, rec in rnd.sample(rows, DUPLICATES):
        rows.append((ts, dict(rec)))

    ids = [rec["id"] for _, rec in rows]
    assert len(set(ids)) == len(ids) - DUPLICATES, "unexpected id collision"
    rows.sort(key=lambda r: (r[0], r[1]["id"]))
    out = sys.stdout
    for _, rec in rows:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
