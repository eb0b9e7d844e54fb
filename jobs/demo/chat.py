"""Non-reasoning records: writing, factual QA, self-cognition and translation.

Writing and factual answers sometimes start with a short plan inside
``<think>``; trivial ones (self-cognition, translation) never do. Facts and
translations are real (translations come from the parallel sentences), so
a language identifier and a reader both find what the ground truth says.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from . import foreign
from .text import FACT_PLAN_TEMPLATES, NARRATIVE_TEMPLATES, PLAN_TEMPLATES, Filler, compiled

DOMAINS = (("writing", 0.35), ("factual_qa", 0.30), ("self_cognition", 0.10), ("translation", 0.25))
WRONG_LANGUAGE_RATE = 0.02
MIXED_LANGUAGE_RATE = 0.01

FACTS = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("What is the capital of Canada?", "The capital of Canada is Ottawa."),
    ("What is the capital of Australia?", "The capital of Australia is Canberra."),
    ("What is the capital of Kenya?", "The capital of Kenya is Nairobi."),
    ("What is the capital of Brazil?", "The capital of Brazil is Brasília."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("What is the chemical symbol for iron?", "The chemical symbol for iron is Fe."),
    ("What is the chemical symbol for sodium?", "The chemical symbol for sodium is Na."),
    ("Which planet is the largest in the Solar System?",
     "Jupiter is the largest planet in the Solar System."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("At what temperature does water boil at sea level?", "At sea level, water boils at 100 °C (212 °F)."),
    ("Who wrote Hamlet?", "Hamlet was written by William Shakespeare."),
    ("How many continents are there?", "By the most common convention there are seven continents."),
    ("What is the tallest mountain on Earth?", "Mount Everest is the tallest mountain above sea level."),
    ("What is the largest ocean?", "The Pacific Ocean is the largest ocean on Earth."),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by Leonardo da Vinci."),
    ("Who developed the theory of general relativity?", "Albert Einstein developed general relativity."),
    ("Which gas do plants absorb for photosynthesis?", "Plants absorb carbon dioxide for photosynthesis."),
    ("How many bones does an adult human have?", "An adult human skeleton usually has 206 bones."),
    ("What is the chemical formula of water?", "The chemical formula of water is H2O."),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is the freezing point of water in Fahrenheit?", "Water freezes at 32 °F at standard pressure."),
    ("Which organ pumps blood through the body?", "The heart pumps blood through the body."),
    ("What is the hardest natural material?", "Diamond is the hardest naturally occurring material."),
    ("How many minutes are in a day?", "A day has 1,440 minutes."),
    ("Who was the first person to walk on the Moon?",
     "Neil Armstrong was the first person to walk on the Moon."),
    ("What language has the most native speakers?", "Mandarin Chinese has the most native speakers."),
    ("What is the longest bone in the human body?", "The femur is the longest bone in the human body."),
)

SELF_QUESTIONS = ("Who are you?", "What is your name?", "Introduce yourself.", "Are you ChatGPT?",
                  "Who created you?", "What can you do?", "Tell me about yourself.", "Are you a human?")
SELF_PREFIXES = ("", "Hi! ", "Hello, ", "Hey there. ", "Quick question: ", "Good morning. ")
SELF_SUFFIXES = ("", " Please answer briefly.", " Be honest.", " I'm curious.")
SELF_ANSWERS = (
    "I am DemoR1, an AI assistant built for the sftmix demo. I can help with math, coding, writing and "
    "general questions.",
    "I am DemoR1, an AI assistant. I am a language model, not a person, and I am happy to help you "
    "think through problems step by step.",
    "Hello! I am DemoR1, an AI assistant trained to reason carefully before answering. Ask me anything.",
)

WRITING_FORMS = ("a short poem", "a short story", "a product description", "a thank-you note",
                 "an email to a colleague", "a blog introduction", "a toast for a wedding",
                 "a haiku sequence")
_WRITING_ASKS = compiled((
    "Write <form> about <aadj> <noun> that <name> <verb> in <place>.",
    "Could you write <form> for <name>, who loves <adj> <nouns>?",
    "Please draft <form> inspired by the <adj> <noun> of <place>.",
))
_WRITING_CONSTRAINTS = compiled((
    "Keep it under <n>0 words.", "Use <aadj> tone.", "Mention the <noun> at least once.",
    "Address it to <name>.", "Avoid clichés about <nouns>.",
))
_QUIZ_PREFIXES = compiled((
    "I'm preparing <anoun> quiz for my <adj> <noun> group. ",
    "My friend <name> and I disagree about this. ",
    "For <aadj> <noun> trivia night in <place>: ",
))
_TRANSLATION_CONTEXT = compiled((
    "I am writing to <anoun> <noun> in <place>.",
    "This is for <aadj> <noun> newsletter that <name> edits.",
    "It goes on a postcard about the <adj> <nouns> of <place>.",
))
_NARRATIVE = compiled(NARRATIVE_TEMPLATES)
_PLANS = {"writing": compiled(PLAN_TEMPLATES), "factual_qa": compiled(FACT_PLAN_TEMPLATES)}


@dataclass
class ChatRecord:
    domain: str
    instruction: str
    response: str
    target_language: str
    reasoning_chars: int = 0
    defects: list[str] = field(default_factory=list)
    foreign_share: float = 0.0
    foreign_language: str | None = None
    finite_prompt: bool = False  # drawn from a small fixed set: repeats are real exact duplicates


class ChatFactory:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.filler = Filler(rng)

    def record(self) -> ChatRecord:
        rng = self.rng
        domain = rng.choices([d for d, _ in DOMAINS], weights=[w for _, w in DOMAINS])[0]
        rec = getattr(self, domain)()
        roll = rng.random()
        if roll < WRONG_LANGUAGE_RATE:
            self._wrong_language(rec)
        elif roll < WRONG_LANGUAGE_RATE + MIXED_LANGUAGE_RATE and rec.target_language == "en":
            self._mix_language(rec)
        if domain in ("writing", "factual_qa") and rng.random() < (0.6 if domain == "writing" else 0.4):
            steps = rng.sample(_PLANS[domain], rng.randint(2, 4))
            plan = " ".join(self.filler.fill(step) for step in steps)
            rec.response = f"<think>\n{plan}\n</think>\n\n{rec.response}"
            rec.reasoning_chars = len(plan)
        return rec

    def writing(self) -> ChatRecord:
        rng, f = self.rng, self.filler
        form = rng.choice(WRITING_FORMS)
        f.slots["form"] = lambda: form
        ask = f.fill(rng.choice(_WRITING_ASKS)) + " " + f.fill(rng.choice(_WRITING_CONSTRAINTS))
        if "poem" in form or "haiku" in form:
            body = "\n".join(f.fill(rng.choice(_NARRATIVE)) for _ in range(rng.randint(4, 8)))
        else:
            body = "\n\n".join(" ".join(f.fill(rng.choice(_NARRATIVE)) for _ in range(rng.randint(3, 5)))
                               for _ in range(rng.randint(2, 4)))
        return ChatRecord("writing", ask, body, "en")

    def factual_qa(self) -> ChatRecord:
        rng = self.rng
        question, answer = rng.choice(FACTS)
        if rng.random() < 0.2:
            return ChatRecord("factual_qa", question, answer, "en", finite_prompt=True)
        return ChatRecord("factual_qa", self.filler.fill(rng.choice(_QUIZ_PREFIXES)) + question, answer, "en")

    def self_cognition(self) -> ChatRecord:
        rng = self.rng
        prompt = rng.choice(SELF_PREFIXES) + rng.choice(SELF_QUESTIONS) + rng.choice(SELF_SUFFIXES)
        return ChatRecord("self_cognition", prompt, rng.choice(SELF_ANSWERS), "en", finite_prompt=True)

    def translation(self) -> ChatRecord:
        rng = self.rng
        language = rng.choice(foreign.FOREIGN_LANGUAGES)
        picks = rng.sample(range(len(foreign.SENTENCES["en"])), rng.randint(1, 3))
        source = " ".join(foreign.SENTENCES["en"][i] for i in picks)
        context = self.filler.fill(rng.choice(_TRANSLATION_CONTEXT))
        ask = f"{context} Translate the following into {foreign.LANGUAGE_NAMES[language]}:\n\n{source}"
        target = foreign.join_sentences(language, [foreign.SENTENCES[language][i] for i in picks])
        return ChatRecord("translation", ask, target, language)

    def _wrong_language(self, rec: ChatRecord) -> None:
        rng = self.rng
        language = rng.choice([x for x in foreign.FOREIGN_LANGUAGES if x != rec.target_language])
        picks = rng.sample(foreign.SENTENCES[language], rng.randint(2, 4))
        rec.response = foreign.join_sentences(language, picks)
        rec.defects.append("wrong_language")
        rec.foreign_share, rec.foreign_language = 1.0, language

    def _mix_language(self, rec: ChatRecord) -> None:
        rng = self.rng
        language = rng.choice(foreign.FOREIGN_LANGUAGES)
        picks = rng.sample(foreign.SENTENCES[language], rng.randint(1, 3))
        inserted = foreign.join_sentences(language, picks)
        rec.response = f"{rec.response} {inserted}"
        rec.defects.append("mixed_language")
        rec.foreign_share, rec.foreign_language = len(inserted) / len(rec.response), language
