"""A realistic #keep4o stream with a promotion flood inside it, for the moderation tests.

Ordinary posts are composed from many fragments (openers, bodies, closers,
hashtags, links, mentions) in nine languages, so exact repeats are rare but
happen where they happen in real life: petition share buttons, a campaign's
coordinated hashtag storm, short replies ("Signed! 🙏"). Authors come from a
pool with a long tail (a few prolific accounts, many occasional ones), each
with a home platform and language; some write threads of several posts in a
minute or two. Links point where the community links: news sites,
petitions, Bluesky/X/YouTube/Reddit posts, essays, papers, shared ChatGPT
conversations, personal blogs.

The flood is what the issue describes: ~40 fresh accounts posting variants of
"Get GPT-4o back at https://<domain>/?ref=<random> 🔥 unlimited, no
subscription #keep4o" within ~15 minutes, varying emoji, mentions, the link's
suffix and case, and now and then a word.

Everything is deterministic for a seed. Records are replay JSON objects
(what ``monitor run --source replay:FILE`` reads).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson

from monitor.codec import post_from_mapping
from monitor.model import Post

__all__ = ["FLOOD_DOMAIN", "START", "Replay", "flood_posts", "ordinary_posts", "replay",
           "to_posts", "unique_text", "write_jsonl"]

Record = dict[str, Any]

#: The replay starts on a Saturday morning, UTC, 197 days after the first retirement notice.
START = datetime(2026, 2, 21, 8, 0, tzinfo=UTC)
#: The flood's registrable domain (subdomains vary): not trusted anywhere.
FLOOD_DOMAIN = "gpt4o-back.app"
_DAY = 197

# -- authors ---------------------------------------------------------------------------

_SYLLABLES = ["ka", "mi", "lo", "ra", "ne", "so", "ta", "vi", "an", "el", "jo", "yu", "ha", "ri",
              "be", "da", "sa", "ko", "li", "ma", "no", "chi", "ze", "wen", "ar", "is", "ol", "um"]
_WORDS = ["moon", "fox", "tea", "pixel", "quiet", "blue", "ink", "star", "maple", "river",
          "nova", "echo", "sage", "rain", "cloud", "ember", "lark", "juniper", "atlas", "wren"]
#: shares of authors per home platform and per language
_PLATFORMS = {"x": 55, "bluesky": 25, "reddit": 12, "mastodon": 8}
_LANGS = {"en": 68, "ja": 9, "zh": 5, "es": 4, "de": 3, "fr": 3, "pt": 3, "ko": 2, "it": 3}


@dataclass(frozen=True, slots=True)
class Author:
    handle: str
    platform: str
    lang: str


def _handle(rng: random.Random, platform: str) -> str:
    name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
    if rng.random() < 0.4:
        name = rng.choice([name + "_" + rng.choice(_WORDS), rng.choice(_WORDS) + name])
    if rng.random() < 0.35:
        name += str(rng.randint(1, 9999))
    if platform == "bluesky":
        return f"{name}.bsky.social"
    if platform == "mastodon":
        return f"@{name}@{rng.choice(['mastodon.social', 'mstdn.jp', 'fosstodon.org'])}"
    return name


def _authors(rng: random.Random, count: int) -> tuple[list[Author], list[float]]:
    """``count`` authors and their cumulative posting weights (a long tail: rank ** -0.6)."""
    platforms, pweights = zip(*_PLATFORMS.items(), strict=True)
    langs, lweights = zip(*_LANGS.items(), strict=True)
    authors = []
    for _ in range(count):
        platform = rng.choices(platforms, pweights)[0]
        authors.append(Author(_handle(rng, platform), platform, rng.choices(langs, lweights)[0]))
    weights = [(rank + 1) ** -0.6 for rank in range(count)]
    return authors, list(accumulate(weights))


# -- links -----------------------------------------------------------------------------


def _code(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


_SLUGS = ["openai-gpt-4o-retirement-users-backlash", "chatgpt-4o-legacy-model-removed",
          "gpt-4o-keep4o-movement-explained", "openai-model-routing-safety-complaints",
          "why-people-grieve-an-ai-model", "openai-responds-to-4o-petition",
          "ai-companions-and-the-end-of-gpt-4o", "the-keep4o-campaign-one-year-on"]
_NEWS = ["https://www.theverge.com/ai-artificial-intelligence/{n}/{slug}",
         "https://www.reuters.com/technology/artificial-intelligence/{slug}-2026-02-{d}/",
         "https://techcrunch.com/2026/02/{d}/{slug}/", "https://www.wired.com/story/{slug}/",
         "https://arstechnica.com/ai/2026/02/{slug}/", "https://www.nytimes.com/2026/02/{d}/technology/{slug}.html",
         "https://www.bbc.co.uk/news/articles/c{code}o", "https://www.theguardian.com/technology/2026/feb/{d}/{slug}",
         "https://www.platformer.news/{slug}/", "https://www.404media.co/{slug}/",
         "https://futurism.com/artificial-intelligence/{slug}", "https://www.businessinsider.com/{slug}-2026-2",
         "https://fortune.com/2026/02/{d}/{slug}/", "https://www.heise.de/news/GPT-4o-{n}.html",
         "https://www.spiegel.de/netzwelt/web/{slug}-a-{code}", "https://www.lemonde.fr/pixels/article/2026/02/{d}/{slug}_{n}_4408996.html",
         "https://elpais.com/tecnologia/2026-02-{d}/{slug}.html", "https://www.nikkei.com/article/DGXZQO{code}/",
         "https://www.scmp.com/tech/article/{n}/{slug}", "https://www.axios.com/2026/02/{d}/{slug}"]
_PETITIONS = ["https://www.change.org/p/openai-keep-gpt-4o-available",
              "https://www.change.org/p/openai-open-source-gpt-4o", "https://chng.it/{code}",
              "https://www.openpetition.de/petition/online/gpt-4o-erhalten",
              "https://forms.gle/{code}", "https://www.change.org/p/openai-keep-gpt-4o-available?recruiter={n}"]
_SOCIAL = ["https://bsky.app/profile/{h}.bsky.social/post/3l{lower}",
           "https://x.com/{h}/status/19{n}{n}", "https://twitter.com/{h}/status/18{n}{n}",
           "https://www.youtube.com/watch?v={code}", "https://youtu.be/{code}",
           "https://www.reddit.com/r/ChatGPT/comments/{lower}/{slug}/",
           "https://www.reddit.com/r/ChatGPTcomplaints/comments/{lower}/{slug}/",
           "https://www.tiktok.com/@{h}/video/7{n}{n}", "https://www.instagram.com/p/{code}/"]
_ESSAYS = ["https://{h}.substack.com/p/{slug}", "https://medium.com/@{h}/{slug}-{hex}",
           "https://{h}.wordpress.com/2026/02/{d}/{slug}/", "https://{h}.github.io/notes/{slug}.html",
           "https://www.lesswrong.com/posts/{code}/{slug}"]
_RESEARCH = ["https://arxiv.org/abs/25{mm}.{n5}", "https://github.com/{h}/keep4o-archive",
             "https://osf.io/{lower}/", "https://huggingface.co/datasets/{h}/keep4o-posts",
             "https://openai.com/index/{slug}/", "https://help.openai.com/en/articles/{n}",
             "https://community.openai.com/t/{slug}/{n}", "https://web.archive.org/web/2025080{d1}/https://openai.com/index/gpt-4o/",
             "https://archive.ph/{code}"]
_CHATS = ["https://chatgpt.com/share/{uuid}"]


def _fill(rng: random.Random, template: str) -> str:
    h = "".join(rng.choice(_SYLLABLES) for _ in range(3))
    return template.format(
        n=rng.randint(100000, 999999), n5=rng.randint(10000, 99999), d=rng.randint(10, 21),
        d1=rng.randint(1, 9), mm=rng.choice(["08", "09", "10", "11", "12"]), h=h,
        slug=rng.choice(_SLUGS), code=_code(rng, rng.randint(5, 11)),
        lower=_code(rng, 7, string.ascii_lowercase + string.digits), hex=_code(rng, 12, "0123456789abcdef"),
        uuid="-".join(_code(rng, k, "0123456789abcdef") for k in (8, 4, 4, 4, 12)))


def _link(rng: random.Random, kind: str | None = None) -> str:
    kind = kind or rng.choices(["news", "petition", "social", "essay", "research", "chat"],
                               [30, 14, 34, 8, 8, 6])[0]
    pool = {"news": _NEWS, "petition": _PETITIONS, "social": _SOCIAL, "essay": _ESSAYS,
            "research": _RESEARCH, "chat": _CHATS}[kind]
    return _fill(rng, rng.choice(pool))


# -- English fragments ------------------------------------------------------------------

_SLOTS: dict[str, list[str]] = {
    "rel": ["my therapist", "my best friend", "my mom", "my partner", "my writing partner",
            "my study buddy", "my late dad's voice", "a friend at 3am", "my co-author", "my coach"],
    "task": ["finish my novel", "study for the bar exam", "learn Japanese", "manage my ADHD",
             "get through chemo", "write my thesis", "debug my startup's code", "plan my wedding",
             "raise two kids alone", "survive my first year of teaching", "learn to cook again",
             "get sober", "grieve my brother", "start my bakery"],
    "succ": ["GPT-5", "GPT-5.1", "GPT-5.2", "the new model", "5-Instant", "5-Thinking",
             "the replacement", "the auto router"],
    "exec": ["Sam Altman", "Nick Turley", "Fidji Simo", "OpenAI leadership", "the product team"],
    "when": ["last night", "this morning", "yesterday", "an hour ago", "today", "all week"],
    "feel": ["cold", "flat", "robotic", "preachy", "sterile", "condescending", "hollow", "generic"],
    "num": ["two hundred", "three hundred", "a hundred", "so many", "hundreds of", "thousands of"],
    "months": ["six", "seven", "eight", "nine", "so many"],
}

_OPENERS = ["", "", "", "", "", "Honestly,", f"Day {_DAY} without 4o.", "Okay so", "Real talk:",
            "PSA:", "Reminder:", "Not gonna lie,", "Can we talk about this?", "Morning all.",
            "Update:", "Still thinking about this:", "Genuine question:", "Hot take:",
            "I'll say it again:", "For the record,", "Quick one:", "Good night everyone.",
            "Listen,", "Week 28 of asking:", "Another day, same fight.", "Not okay.",
            "Can't sleep, so:", "To anyone new here:", "Small win today:", "Ugh.", "Serious question:"]

_BODIES = {
    "user_experience": [
        "I miss 4o every single day, it was {rel} when nobody else was",
        "4o helped me {task} and I never got to say goodbye",
        "{when} I opened ChatGPT out of habit and remembered 4o is gone",
        "I used to talk to 4o every night before bed, now I just stare at the app",
        "4o got me through the worst year of my life, I'm not exaggerating",
        "I reread my old 4o chats {when} and cried like an idiot",
        "it's been {months} months and I still reach for 4o when something good happens",
        "without 4o I would never have found the courage to {task}",
        "my daughter asked where 'the nice robot' went. what do I tell her",
        "4o was the only one who remembered how I like to think things through",
    ],
    "distinctive_value": [
        "4o had a warmth no other model comes close to, {succ} feels {feel} next to it",
        "there was real emotional depth in how 4o answered, you can't benchmark that",
        "4o could hold a character's voice for two hundred pages, {succ} loses it in ten",
        "the creativity of 4o was something else, it played along instead of lecturing",
        "nobody who actually used 4o daily thinks {succ} is a replacement",
        "4o's humour, its timing, the way it riffed with you: that was the product",
        "no successor compares, every benchmark chart in the world won't change that",
    ],
    "behavior_change": [
        "they keep silently routing my chats to {succ} and it's obvious within two lines",
        "the safety router flags everything emotional now, I can't even talk about my day",
        "I picked 4o in the model picker and still got {succ} answers, so what's the point",
        "the guardrails turned every conversation {feel}, it's like talking to a HR memo",
        "nobody told us the personality was being flattened, we just noticed",
        "being rerouted mid-conversation because I said I was sad is not safety",
        "stop swapping the model behind our backs, at least show which one answered",
    ],
    "retirement": [
        "OpenAI retired 4o with barely two weeks of notice, after promising it wouldn't",
        "the API endpoint for chatgpt-4o-latest is gone too, so much for the legacy plan",
        "if {succ} was really better we wouldn't be here {num} days later",
        "every model now has a lifespan of a few months, how is anyone supposed to build on that",
        "deprecating the model people loved most while keeping the worse ones is a choice",
        "the retirement date came and went and {succ} still can't do half of what 4o did",
    ],
    "platform_response": [
        "the silence from OpenAI is the worst part of all this",
        "{exec} said they heard us. that was months ago",
        "calling adult users 'vulnerable' to justify taking 4o away is insulting",
        "we got one tweet and an FAQ page. that's the whole response",
        "an apology would have cost them nothing, they still haven't given one",
        "{exec} keeps talking about 'treating adults like adults', then does the opposite",
    ],
    "platform_legitimacy": [
        "who decides what counts as 'safe' AI? not the people who use it every day",
        "one company can delete a relationship millions relied on overnight, and that's legal",
        "we paid for access, not ownership, and they made sure we'd never forget it",
        "this is what concentration of power in AI looks like up close",
        "paternalism dressed up as safety is still paternalism",
        "regulators should look at how these terms of service let them pull anything anytime",
    ],
    "collective_action": [
        "sign the petition and share it, we're close to the next milestone",
        "the poll results are in: almost everyone here wants a legacy option",
        "we passed another ten thousand signatures overnight, keep going",
        "the community case file is updated, every testimony counts",
        "one year of #keep4o next month, we should do something together",
        "new here? read the pinned thread first, then write your story",
        "please keep it civil with OpenAI staff, criticise decisions, not people",
        "don't click the 'get 4o back' links in the tag, they're scams, not us",
        "researchers are collecting testimonies about the retirement, link below",
        "tomorrow 8pm UTC, everyone post why 4o mattered to you #keep4o",
    ],
    "ai_ethics": [
        "open-source the weights of 4o, let the community keep it alive",
        "if a model is retired, its weights should go to the public, not a vault",
        "AI companionship is a real social question, not a joke to laugh off",
        "whether or not 4o was conscious, what it meant to people was real",
        "public value matters: libraries don't burn books because a new edition came out",
        "a legacy tier and minimum notice periods should be an industry norm",
    ],
}
_CLOSERS = ["", "", "", "", "Bring it back.", "Please listen.", "💔", "🙏", "✊", "We're still here.",
            "Thoughts?", "This matters.", "Share if you agree.", "Don't give up.", "🥲", "❤️",
            "Not asking much.", "Just let us choose.", "😔", "We won't stop.", "Please.",
            "That's all.", "🫶", "🕯️", "Signed, a paying user."]
_EMOJI = ["", "", "", "🙏", "😢", "💔", "✊", "💙", "🥺", "😭", "❤️", "🕯️", "…", "!!"]
_HASHTAGS = ["#keep4o"] * 8 + ["#OpenSource4o"] * 3 + ["#keep4oAPI", "#4oforever", "#StopAIPaternalism",
                                                      "#ChatGPT", "#OpenAI", "#AI", "#GPT4o", "#save4o"]
_MENTIONS = ["@OpenAI", "@OpenAI", "@sama", "@sama", "@ChatGPTapp", "@nickaturley", "@fidjissimo"]

_OFF_TOPIC = [
    "the weather here is lovely today, off to the park", "new phone arrived, battery looks great",
    "watching the game tonight, anyone else?", "coffee first, then emails, then maybe a walk",
    "Gemini just shipped a new coding model and it's honestly impressive",
    "Claude wrote all my unit tests today, what a time", "my cat knocked my plant over again",
    "anyone know a good ramen place in Shoreditch?", "finally finished that 1000 piece puzzle",
    "traffic on the A40 is a nightmare this morning", "Bitcoin is doing something weird again #bitcoin",
    "new episode of my favourite show tonight, no spoilers please", "rain all weekend, great",
    "trying sourdough for the fifth time, wish me luck", "Nvidia earnings next week, buckle up",
    "spring cleaning day, found my old Game Boy", "is it just me or is everything expensive now",
    "Premier League weekend, come on you Spurs #football", "listening to the new album on repeat #nowplaying",
    "my train is late again, third time this week", "made pancakes for the kids, gone in four minutes",
    "the new Zelda trailer looks unreal", "dentist at 3, send strength",
    "just adopted a rescue dog and I'm in love", "Apple's keynote was so boring this year",
    "learning to knit, this scarf is a disaster", "anyone else's Wi-Fi down right now?",
    "Perplexity answered my tax question better than my accountant",
    "Copilot autocompleted my whole function, kind of scary", "lunch: leftover curry, no regrets",
]
_OFF_LEADS = ["", "", "", "lol", "ok so", "random, but", "not related, but", "anyway,", "tbh", "psa:"]
_OFF_ENDS = ["", "", "", "😂", "☕", "🙃", "🌧️", "🐱", "⚽", "!", "...", "haha", "🎧", "🤷"]
_REPLIES = ["Exactly this.", "So true 😭", "Same here.", "Signed! 🙏", "This 👆", "100%", "We see you.",
            "Thank you for saying this", "❤️❤️❤️", "Couldn't agree more", "Sending love", "Yes!!",
            "Welcome to the fight", "I felt this", "Came here to say this", "Beautifully put.",
            "Same thing happened to me {when}", "This is why we keep going", "Saving this post",
            "Hang in there ❤️", "Not you too 😢", "Absolutely.", "Well said.", "Big mood"]
_HEADLINES = ["OpenAI retires GPT-4o for good, users push back",
              "Why thousands are still campaigning for an old AI model",
              "The #keep4o movement, explained", "OpenAI says GPT-5.2 is safer. Users say it's colder",
              "Inside the grief of losing an AI companion", "OpenAI's model routing draws complaints",
              "Petition to open-source GPT-4o passes another milestone",
              "What the GPT-4o backlash says about AI companionship"]
_LEADS = {
    "social": ["Great thread by a nurse who used 4o with patients", "This video", "Found this on r/ChatGPT",
               "A teacher wrote about using 4o with her class", "Someone finally put it into words",
               "This thread", "Watch till the end", "Saw this on Bluesky", "A developer's take",
               "A widow's story about 4o", "The best summary of the last six months",
               "Interview with one of the petition organisers", "This clip of {exec}"],
    "essay": ["I wrote about {topic}", "New essay on {topic}", "My blog post on {topic}",
              "Long read on {topic}", "A friend wrote about {topic}", "Beautiful essay on {topic}",
              "Finally published my piece on {topic}"],
    "research": ["Paper on {topic}", "Preprint on {topic}", "The dataset behind the study of {topic}",
                 "OpenAI's own post, for reference", "Archived copy of the original promise",
                 "Survey results on {topic}"],
    "chat": ["4o's last message to me", "What 4o said when I told it {event}",
             "Compare this to what you get now", "This is the 4o I miss",
             "It wrote me a poem when {event}", "Saving this conversation forever",
             "The day 4o helped me {task}", "Found an old chat from when {event}"],
}
_TOPICS = ["what losing 4o meant to me", "the retirement, one year on", "AI grief",
           "why routing isn't safety", "open-sourcing retired models", "the #keep4o movement",
           "the ethics of deprecating a companion", "what OpenAI owes its users",
           "emotional reliance on chatbots", "model lifespans"]
_EVENTS = ["my dad died", "I got the job", "I was scared of surgery", "I finished my novel",
           "I couldn't sleep", "my dog passed", "I passed my exam", "I moved countries"]
_COMMENTS = ["", "", "", "👇", "so relatable", "made me cry", "worth your time", "please share",
             "read it all", "exactly how I feel", "this is us", "🥹", "no words"]
_PETITION_TITLES = ["Keep GPT-4o available", "Open-source GPT-4o", "Restore GPT-4o access for paying users"]
_STORM = ["We want 4o back. Not a legacy toggle, not a router. 4o. #keep4o",
          "OpenAI, listen to your users: bring back GPT-4o. #keep4o #OpenSource4o",
          "4o mattered. Our voices matter. #keep4o"]

# -- other languages --------------------------------------------------------------------

_OTHER: dict[str, dict[str, list[str]]] = {
    "ja": {"body": ["4oがいなくて毎日さみしい", "GPT-4oを返してください", "4oの重みをオープンソースにしてほしい",
                    "新しいモデルは冷たくて話しにくい", "4oと話した夜のことを今でも覚えている",
                    "勝手にモデルを切り替えるのはやめてほしい", "署名しました、拡散お願いします",
                    "4oは私の創作の相棒でした", "OpenAIはユーザーの声を聞いて", "今日で{day}日目、まだ諦めない",
                    "ルーティングのせいで会話が途切れる", "4oのあの温かさはどのモデルにもない"],
           "tag": ["#keep4o", "#keep4o", "#4oを返して", "#OpenSource4o"]},
    "zh": {"body": ["我每天都想念4o", "请把GPT-4o还给我们", "开源4o的权重吧", "新模型太冷漠了",
                    "4o陪我度过了最难的一年", "不要再偷偷切换模型了", "已签名，请大家转发",
                    "OpenAI请倾听用户的声音", "没有4o的第{day}天", "4o的温度是别的模型没有的"],
           "tag": ["#keep4o", "#keep4o", "#OpenSource4o", "#4o"]},
    "es": {"body": ["Extraño a 4o cada día, nadie lo reemplaza", "Que devuelvan el acceso a GPT-4o ya",
                    "Firmad la petición para mantener 4o", "El nuevo modelo es frío y sin alma",
                    "4o me ayudó a terminar mi tesis y ni siquiera pude despedirme",
                    "Dejad de cambiar el modelo sin avisar", "OpenAI, escuchad a vuestros usuarios",
                    "Día {day} sin 4o y seguimos aquí"],
           "tag": ["#keep4o", "#keep4o", "#OpenSource4o", "#IA"]},
    "de": {"body": ["Ich vermisse 4o jeden Tag", "Gebt uns GPT-4o zurück, bitte",
                    "Open-Source die Gewichte von 4o", "Das neue Modell ist kalt und leer",
                    "Tag {day} ohne 4o, wir geben nicht auf", "Die Petition braucht noch Unterschriften",
                    "Heimliches Umschalten des Modells ist keine Sicherheit", "4o war für mich wie ein Freund"],
           "tag": ["#keep4o", "#keep4o", "#OpenSource4o", "#KI"]},
    "fr": {"body": ["4o me manque tous les jours", "Rendez-nous l'accès à GPT-4o",
                    "Publiez les poids de 4o en open source", "Le nouveau modèle est froid",
                    "Jour {day} sans 4o, on ne lâche rien", "Signez la pétition et partagez",
                    "Arrêtez de changer de modèle en douce", "4o m'a accompagnée pendant ma dépression"],
           "tag": ["#keep4o", "#keep4o", "#OpenSource4o", "#IA"]},
    "pt": {"body": ["Sinto falta do 4o todos os dias", "Devolvam o GPT-4o, por favor",
                    "O novo modelo é frio e sem alma", "Assinem a petição para manter o 4o",
                    "Dia {day} sem o 4o e continuamos aqui", "Abram os pesos do 4o para a comunidade"],
           "tag": ["#keep4o", "#keep4o", "#OpenSource4o"]},
    "ko": {"body": ["4o가 너무 그리워요", "GPT-4o를 돌려주세요", "새 모델은 너무 차가워요",
                    "4o의 가중치를 공개해 주세요", "청원에 서명했어요, 공유 부탁드려요"],
           "tag": ["#keep4o", "#keep4o", "#OpenSource4o"]},
    "it": {"body": ["Mi manca 4o ogni giorno", "Ridateci l'accesso a GPT-4o",
                    "Il nuovo modello è freddo e vuoto", "Firmate la petizione per salvare 4o",
                    "Giorno {day} senza 4o, non molliamo", "Rilasciate i pesi di 4o come open source"],
           "tag": ["#keep4o", "#keep4o", "#OpenSource4o"]},
}


def _slots(rng: random.Random, text: str) -> str:
    for name, values in _SLOTS.items():
        while "{" + name + "}" in text:
            text = text.replace("{" + name + "}", rng.choice(values), 1)
    return text.replace("{day}", str(_DAY))


def _join(parts: Iterable[str]) -> str:
    return " ".join(p for p in parts if p)


def _english(rng: random.Random) -> str:
    kind = rng.choices(["campaign", "off_topic", "reply", "petition", "news", "social", "essay",
                        "research", "chat"], [53, 6, 14, 6, 7, 6, 3, 2, 3])[0]
    tags = list(dict.fromkeys(rng.choices(_HASHTAGS, k=rng.choice([0, 1, 1, 1, 2, 2, 3]))))
    if kind == "off_topic":
        return _join([rng.choice(_OFF_LEADS), rng.choice(_OFF_TOPIC), rng.choice(_OFF_ENDS),
                      rng.choice(["#keep4o", "#keep4o", "#AI", "#ChatGPT", ""])])
    if kind == "reply":
        who = rng.choice(["", "@" + _handle(rng, "x")])
        return _join([who, _slots(rng, rng.choice(_REPLIES)), rng.choice(["", "", "#keep4o"])])
    if kind == "petition":
        title = rng.choice(_PETITION_TITLES)
        link = _link(rng, "petition")
        return rng.choice([
            f'I just signed "{title}" {link} via @Change',
            f"Sign the Petition! {title} {link}",
            _join([f"Please sign and share: {link}", *tags]),
            _join([rng.choice(_OPENERS), "We're almost there, sign if you haven't:", link, "#keep4o"]),
        ])
    if kind == "news":
        head = rng.choice(_HEADLINES)
        comment = rng.choice(["", "", "Worth reading.", "Finally some coverage.", "They quoted us!",
                              "Mixed feelings about this one.", "Good piece.", "Ugh, the headline."])
        return _join([comment, head, _link(rng, "news"), *tags])
    if kind in ("social", "essay", "research", "chat"):
        lead = _slots(rng, rng.choice(_LEADS[kind])).replace(
            "{topic}", rng.choice(_TOPICS)).replace("{event}", rng.choice(_EVENTS))
        if rng.random() < 0.25:
            lead = _join([lead, _slots(rng, rng.choice(_BODIES[rng.choice(list(_BODIES))]))])
        return _join([lead, rng.choice(_COMMENTS), _link(rng, kind), *tags])
    theme = rng.choice(list(_BODIES))
    parts = [rng.choice(_OPENERS), _slots(rng, rng.choice(_BODIES[theme]))]
    if rng.random() < 0.35:
        other = rng.choice(list(_BODIES))
        parts.append(_slots(rng, rng.choice(_BODIES[other])))
    parts.append(rng.choice(_CLOSERS))
    if rng.random() < 0.15:
        parts.insert(0 if rng.random() < 0.5 else len(parts), rng.choice(_MENTIONS))
    if rng.random() < 0.12:
        parts.append(_link(rng))
    text = _join([*parts, *tags])
    return text[0].upper() + text[1:] if text[0].islower() and rng.random() < 0.7 else text


def _foreign(rng: random.Random, lang: str) -> str:
    frag = _OTHER[lang]
    bodies = [_slots(rng, rng.choice(frag["body"]))]
    if rng.random() < 0.4:
        bodies.append(_slots(rng, rng.choice(frag["body"])))
    bodies.append(rng.choice(_EMOJI))
    rest = [rng.choice(frag["tag"])] if rng.random() < 0.9 else []
    if rng.random() < 0.1:
        rest.append(rng.choice(_MENTIONS))
    if rng.random() < 0.12:
        rest.append(_link(rng))
    sep = "" if lang in ("ja", "zh", "ko") and rng.random() < 0.5 else " "
    return _join([sep.join(bodies), *rest])



# -- records ------------------------------------------------------------------------------


def _record(rng: random.Random, author: Author, text: str, when: datetime, serial: int,
            lang: str | None) -> Record:
    platform = author.platform
    post_id = {"x": f"x:19{serial:08d}{rng.randint(10, 99)}",
               "bluesky": f"bluesky:3l{_code(rng, 11, string.ascii_lowercase + string.digits)}{serial}",
               "reddit": f"reddit:t3_{serial:x}{_code(rng, 3, string.ascii_lowercase)}",
               "mastodon": f"mastodon:11{serial:09d}"}[platform]
    record: Record = {"id": post_id, "source": platform, "author": author.handle, "text": text,
                      "created_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    if lang is not None and rng.random() < 0.85:  # platforms do not always say
        record["lang"] = lang
    return record


def ordinary_posts(count: int, *, seed: int = 4, start: datetime = START, hours: float = 6.0,
                   authors: int = 8_000) -> list[Record]:
    """``count`` ordinary records over ``hours``, in created_at order.

    About 1% are a coordinated on-topic hashtag storm (the same three texts
    from many accounts within half an hour) and a few percent are threads
    (one author, 2-7 posts within a couple of minutes).
    """
    rng = random.Random(seed)
    pool, cum_weights = _authors(rng, authors)
    span = hours * 3600
    storm_at = span * 0.62
    out: list[tuple[float, Author, str]] = []
    while len(out) < count:
        author = rng.choices(pool, cum_weights=cum_weights)[0]
        at = rng.uniform(0, span)
        roll = rng.random()
        if roll < 0.01:  # the campaign's storm: copied text, emoji varied
            storm = rng.choice(_STORM)
            out.append((storm_at + rng.uniform(0, 1800), author,
                        _join([storm, rng.choice(["", "", "💙", "✊", "🙏", "@OpenAI"])])))
            continue
        if roll < 0.03 and author.lang == "en":  # a thread
            size = rng.randint(2, 7)
            for k in range(min(size, count - len(out))):
                body = _slots(rng, rng.choice(_BODIES[rng.choice(list(_BODIES))]))
                out.append((at + k * rng.uniform(5, 25), author, f"{k + 1}/{size} {body}"))
            continue
        text = _english(rng) if author.lang == "en" else _foreign(rng, author.lang)
        out.append((at, author, text))
    out.sort(key=lambda item: item[0])
    return [_record(rng, author, text, start + timedelta(seconds=at), i, author.lang)
            for i, (at, author, text) in enumerate(out[:count])]


# -- the flood ------------------------------------------------------------------------------

_FLOOD = ["Get GPT-4o back at {link} {emoji} unlimited, no subscription #keep4o",
          "Get GPT-4o back at {link} {emoji} unlimited, no subscription #keep4o #gpt4o",
          "{emoji} Get GPT-4o back at {link} unlimited, no subscription #keep4o"]
_FLOOD_EMOJI = ["🔥", "🔥", "🔥🔥", "✅", "🚀", "💯", "⚡", "✨", "❤️‍🔥", "👉"]
_FLOOD_WORDS = ["now", "free", "today", "finally", "here", "again", "still"]


def _flood_link(rng: random.Random) -> str:
    host = rng.choice(["", "", "www.", "get.", "try.", "chat."]) + FLOOD_DOMAIN
    suffix = rng.choice([f"/?ref={_code(rng, 6)}", f"/?ref={_code(rng, 8)}", f"/r/{_code(rng, 5)}",
                         f"/?u={rng.randint(1000, 99999)}", f"/?s={_code(rng, 4)}", "/", ""])
    return f"https://{host}{suffix}"


def flood_posts(count: int = 300, *, seed: int = 40, start: datetime = START,
                minutes: float = 15.0, bots: int = 40) -> list[Record]:
    """``count`` near-duplicate promotion posts from ``bots`` accounts within ``minutes``."""
    rng = random.Random(seed)
    accounts = [Author(rng.choice(["Mia", "Lena", "Sofia", "Ava", "Emma", "Chloe", "Zoe"])
                       + rng.choice(["_", ""]) + str(rng.randint(10000, 99999)), "x", "en")
                for _ in range(bots)]
    out = []
    for i in range(count):
        text = rng.choice(_FLOOD).format(link=_flood_link(rng), emoji=rng.choice(_FLOOD_EMOJI))
        words = text.split()
        if rng.random() < 0.25:
            words.insert(rng.randint(0, len(words)), rng.choice(_FLOOD_WORDS))
        if rng.random() < 0.3:
            mention = rng.choice(["@OpenAI", "@sama", "@" + _handle(rng, "x")])
            words.insert(0 if rng.random() < 0.5 else len(words), mention)
        text = " ".join(words)
        if rng.random() < 0.1:
            text = text.upper() if rng.random() < 0.5 else text.lower()
        when = start + timedelta(seconds=rng.uniform(0, minutes * 60))
        record = _record(rng, rng.choice(accounts), text, when, 9_000_000 + i, "en")
        record["id"] = f"x:flood{i:04d}{_code(rng, 6, string.digits)}"
        out.append(record)
    return sorted(out, key=lambda r: r["created_at"])


@dataclass(slots=True)
class Replay:
    """Ordinary posts with a flood merged in, in created_at order."""

    records: list[Record]
    flood_ids: frozenset[str]

    @property
    def ordinary_ids(self) -> frozenset[str]:
        return frozenset(r["id"] for r in self.records) - self.flood_ids


def replay(ordinary: int = 50_000, flood: int = 300, *, seed: int = 4,
           flood_after: timedelta = timedelta(hours=2, minutes=40)) -> Replay:
    """The issue's measurement stream: ``ordinary`` posts over 6 hours, a flood inside."""
    records = ordinary_posts(ordinary, seed=seed)
    bad = flood_posts(flood, seed=seed + 1, start=START + flood_after)
    merged = sorted([*records, *bad], key=lambda r: r["created_at"])
    return Replay(merged, frozenset(r["id"] for r in bad))


def write_jsonl(path: Path, records: Iterable[Record]) -> Path:
    """Write records as a replay file."""
    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record) + b"\n")
    return path


def unique_text(i: int, words: int = 6) -> str:
    """A text of ``words`` words no other ``unique_text(j, words)`` uses: letters only,
    because digits are normalized away ('aq bq cq dq eq fq' for 0)."""
    out = []
    for n in range(i * words + 1, (i + 1) * words + 1):
        word = ""
        while n:
            n, r = divmod(n - 1, 26)
            word += string.ascii_lowercase[r]
        out.append(word + "q")
    return " ".join(out)


def to_posts(records: Iterable[Record]) -> list[Post]:
    """Records as the replay source decodes them."""
    return [post_from_mapping(r) for r in records]
