"""Generate prompt_suites/training/sft.jsonl: a small supervised fine-tuning set for SmolLM2-135M-Instruct.

Two tasks:

- `triage`: templated customer-support tickets, slot-filled, whose system message is exactly the `support-triage`
  suite's `defaults.system` and whose response is the compact JSON `{"category": "...", "urgent": true|false}`,
  labelled by that system prompt's rules (urgent: the product cannot be used at all, a security or data-loss risk,
  or a deadline within the next 24 hours).
- `terse`: short factual and format-following instructions (one word, a numeral only, YES/NO only, a JSON object
  with given keys, uppercase or lowercase rewrites, bullet lists) whose answers are computed here (arithmetic,
  string transformations) or are well-known facts; system message: the `format-following` and `factual-qa`
  suites' `defaults.system`, alternately.

No line is an evaluation case: `harness suites overlap` (run by `make test`) compares every user message here
with every case of every suite. Deterministic: a fixed seed, no clock, no environment.

    python prompt_suites/training/generate.py [--out PATH]    # default: sft.jsonl beside this script

Standard library only, plus PyYAML to read the suites' system prompts.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
DEFAULT_OUT = HERE / "sft.jsonl"
SEED = 20240611
TRIAGE_PER_CATEGORY = 75
TERSE_COUNT = 120
CATEGORIES = ("billing", "bug", "account", "other")


def suite_system(file: str) -> str:
    """The `defaults.system` text of a shipped suite, exactly as the harness sends it."""
    data = yaml.safe_load((EXAMPLES / file).read_text(encoding="utf-8"))
    system = data["defaults"]["system"]
    assert isinstance(system, str) and system
    return system


# ---------------------------------------------------------------------------------------------------------------
# triage: slots and templates
# ---------------------------------------------------------------------------------------------------------------

SLOTS: dict[str, tuple[str, ...]] = {
    "plan": ("Starter", "Team", "Business", "Pro", "Enterprise", "Growth"),
    "amount": ("$12", "$19", "$49", "$75", "$120", "$240", "€18", "€59", "€310", "£35", "£90", "£420"),
    "month": ("January", "February", "April", "May", "June", "July", "August", "October", "November"),
    "day": ("the 3rd", "the 9th", "the 14th", "the 21st", "the 28th", "last Monday", "last Thursday"),
    "n": ("3", "5", "8", "12", "25", "60", "150"),
    "pct": ("10", "15", "20", "25", "30"),
    "name": (
        "Tomás",
        "Ingrid",
        "Kwame",
        "Mei",
        "Oliver",
        "Fatima",
        "Lukas",
        "Sofia",
        "Dmitri",
        "Aisha",
        "Jonas",
        "Chloe",
        "Rafael",
        "Hannah",
        "Kenji",
        "Nadia",
    ),
    "company": ("Brightline Ltd", "Okafor & Sons", "Nordvik AS", "Blue Heron Studio", "Kestrel Logistics"),
    "feature": (
        "the calendar view",
        "the Kanban board",
        "the reporting dashboard",
        "the file uploader",
        "the comments panel",
        "the time tracker",
        "the Gantt chart",
        "the import wizard",
        "the task list",
        "the shared inbox",
        "the form builder",
        "the mobile widget",
    ),
    "browser": ("Chrome", "Firefox", "Safari", "Edge", "Brave"),
    "device": ("my iPhone", "an Android tablet", "my Pixel phone", "an iPad", "a Samsung phone"),
    "computers": ("Windows laptops", "MacBooks", "office PCs", "Linux workstations"),
    "filetype": ("PNG", "XLSX", "MP4", "ZIP", "DOCX"),
    "size": ("20", "50", "100", "250"),
    "version": ("4.2", "4.7", "5.0", "5.1.3", "6.0"),
    "integration": ("Slack", "Microsoft Teams", "Google Calendar", "Zapier", "GitHub", "Jira"),
    "tz": ("Central European Time", "Pacific Time", "India Standard Time", "Japan Standard Time"),
    "time": ("8 am", "about 10 o'clock", "lunchtime", "the start of the shift", "early this morning"),
    "team": ("sales", "support", "design", "finance", "warehouse", "marketing"),
    "city": ("Lagos", "São Paulo", "Singapore", "Reykjavik", "Montreal", "Nairobi", "Osaka"),
    "idp": ("Okta", "Azure AD", "Google Workspace", "OneLogin"),
    "language": ("Spanish", "German", "Japanese", "Portuguese", "Polish"),
    "tool": ("Notion", "Figma", "Salesforce", "HubSpot", "Trello", "Asana"),
    "role": ("backend engineer", "UX researcher", "technical writer", "data analyst", "support specialist"),
    "paper": ("the Daily Ledger", "TechWire", "the Morning Post", "Startup Weekly"),
    "conference": ("Web Summit", "SaaStr", "a regional DevOps meetup", "the spring product expo"),
    "topic": ("your latest funding round", "the new AI assistant", "your pricing changes", "the outage last week"),
    # deadlines within the next 24 hours ("by ..." and "when" forms), and later ones
    "urgent_deadline": (
        "by noon today",
        "before 6 pm today",
        "within the next two hours",
        "by tonight",
        "by 9 am tomorrow",
        "by the end of today",
    ),
    "soon": ("tomorrow morning", "this afternoon", "at 5 pm today", "in two hours", "tonight", "later today"),
    "later": (
        "by the end of next week",
        "before the end of the month",
        "sometime next quarter",
        "within the next two weeks",
        "in about ten days",
    ),
    "user": ("jdoe", "mk_lee", "sam.r", "alex2019", "pbrown"),
    "user_new": ("jane.doe", "minkyu.lee", "samira.r", "alex.ortiz", "pat.brown"),
    "email": ("me@old-domain.com", "j.smith@gmail.com", "office@kestrel.io", "hello@bluestudio.net"),
    "email_new": ("jsmith@work-domain.com", "admin@nordvik.no", "ops@brightline.co.uk", "team@okafor.ng"),
}

OPENERS = ("", "", "Hi! ", "Hello. ", "Hi team! ", "Good morning. ", "Hello there! ")
CLOSERS = ("", "", " Thanks!", " Thank you.", " Thanks, {name}.", " Best regards, {name}", " Cheers.")

# (template, urgent): urgent follows the suite's rule (cannot use the product at all, security or data-loss risk,
# or a deadline within the next 24 hours); everything else is not urgent.
TRIAGE_TEMPLATES: dict[str, list[tuple[str, bool]]] = {
    "billing": [
        (
            "There is a charge of {amount} from {day} that I don't recognise. We're on the {plan} plan, which costs "
            "less than that. What was it for?",
            False,
        ),
        ("Can you send me the invoices for {month} and {month2}? I need them for an expense report {later}.", False),
        (
            "How do I switch our subscription from monthly to yearly billing? I read that the annual {plan} plan is "
            "cheaper.",
            False,
        ),
        (
            "I cancelled my {plan} subscription on {day}, yet {amount} was taken again this month. Please refund it.",
            False,
        ),
        ("Do you accept bank transfers? Our company policy doesn't allow paying for software by credit card.", False),
        (
            "We added {n} people to our workspace last week. Are we billed a full month for each of them or only "
            "from the day they joined?",
            False,
        ),
        (
            "Please swap the card on file for our new company Mastercard. The current card is valid until {month}, "
            "so no hurry.",
            False,
        ),
        ("Is there a discount for charities or schools? We're a small non-profit looking at the {plan} plan.", False),
        (
            "The receipts we get are made out to {company}, but our legal name is {company2}. Could you correct "
            "that from now on?",
            False,
        ),
        (
            "Your pricing page lists {plan} at {amount} per seat, but our last bill works out higher per person. "
            "Could you explain how it was calculated?",
            False,
        ),
        ("Where can I download every invoice from last year in one go? Our auditors want them {later}.", False),
        (
            "{name} from your sales team promised us {pct}% off the first year, but the discount isn't on the "
            "latest invoice.",
            False,
        ),
        (
            "Why did our monthly price go up from {amount} to {amount2}? I didn't get any notice about a price change.",
            False,
        ),
        (
            "Our payment was declined and now the workspace is locked: none of our {n} staff can open a single "
            "project. How can we pay right now?",
            True,
        ),
        (
            "I need a paid invoice for {amount} {urgent_deadline}, otherwise our client won't reimburse us. Can "
            "you send it?",
            True,
        ),
        (
            "After a failed renewal payment our account was downgraded and every project became read-only. We "
            "present to a client {soon}; please restore the plan.",
            True,
        ),
        (
            "{name} from our accounts team has to pay the renewal {urgent_deadline} or the discount lapses. Which "
            "payment methods can she use?",
            True,
        ),
        (
            "Our purchase order expires {soon}. Could you issue the quote for {n} {plan} seats before "
            "then so finance can approve it?",
            True,
        ),
    ],
    "bug": [
        (
            "{feature} never finishes loading in {browser}, it just shows a spinner. It works in {browser2}, so "
            "this isn't blocking me.",
            False,
        ),
        (
            "Uploading a {filetype} file bigger than {size} MB gets stuck at 99% and never completes. Smaller "
            "files go through fine.",
            False,
        ),
        (
            "The weekly totals in the reporting dashboard are off: items logged on {day} get counted in the "
            "following week.",
            False,
        ),
        (
            "On {device} the app signs me out every time I switch to another app and come back. Annoying, but "
            "the web version still works.",
            False,
        ),
        (
            "Searching for words with accents, like 'café' or 'año', finds nothing, even though those words are "
            "in my notes.",
            False,
        ),
        ("Since the last update {feature} shows every time in UTC instead of my own time zone ({tz}).", False),
        (
            "Dragging cards on the Kanban board drops them into the wrong column about half the time, so I have "
            "to move them again.",
            False,
        ),
        ("Printing from {feature} in {browser} gives a blank page, although the print preview looks right.", False),
        ("We get every notification from the {integration} integration twice, once for each comment.", False),
        ("Since version {version} the Ctrl+K shortcut opens the settings menu instead of the quick search.", False),
        ("Charts stay empty whenever I pick a date range longer than twelve months. Shorter ranges render.", False),
        ("Photos I paste into comments from {device} show up rotated sideways.", False),
        ("The unread counter in {feature} stays at {n} even after I have opened every item.", False),
        (
            "{feature} has answered every request with 'Error 500' since {time}, for everyone in the company. "
            "We cannot work at all.",
            True,
        ),
        (
            "Since today's release, saving a document quietly throws away the most recent edits. {n} of my "
            "colleagues have already lost work.",
            True,
        ),
        (
            "The import wizard replaced all {n} of our customer records with empty rows. Please stop it before "
            "we lose more data.",
            True,
        ),
        (
            "The app won't start on any of our {computers}: it closes right after the splash screen, and the "
            "whole {team} team is stuck.",
            True,
        ),
        (
            "Exporting to Excel has failed since {time}, and I must send these figures to our auditor "
            "{urgent_deadline}. Is there a fix or a workaround?",
            True,
        ),
        (
            "Our dashboard is showing another customer's invoices, with their names and addresses. That looks "
            "like a serious data leak.",
            True,
        ),
    ],
    "account": [
        ("How do I turn on two-factor authentication for my login?", False),
        (
            "{name} has moved to another department and no longer needs our workspace. Could you remove "
            "their seat {later}?",
            False,
        ),
        ("I'd like to change my username from {user} to {user_new}. Is that possible?", False),
        ("I have two accounts, {email} and {email_new}. Can they be merged into one?", False),
        ("How can I let {name} edit projects without making them a full administrator?", False),
        ("Where do I update the phone number on my profile?", False),
        ("Please transfer ownership of our workspace to {name}; I'm leaving the team {later}.", False),
        ("How do we set up single sign-on with {idp} for our {team} team?", False),
        ("I'd like to close my account and have my personal data deleted. What are the steps?", False),
        ("Can I switch my profile language to {language}?", False),
        ("Is there a log showing who signed in to our workspace over the last month?", False),
        ("How do I change the profile picture that other members see next to my name?", False),
        (
            "Can guests invited to a single project see our member list? I want to check permissions before "
            "inviting {n} freelancers.",
            False,
        ),
        (
            "I received a sign-in alert from {city}, and I have never been there. Someone may have my password; "
            "please lock the account.",
            True,
        ),
        (
            "I'm locked out after too many wrong passwords and the unlock email never arrives, so I can't get "
            "into the product at all.",
            True,
        ),
        ("Our single sign-on stopped working this morning and none of our {n} employees can log in.", True),
        ("I accidentally pasted my password into a public channel. How do I sign out every session right now?", True),
        (
            "I have to give {name} editor rights {urgent_deadline} so they can finish the launch page, but the "
            "invite button is greyed out for me. What permission am I missing?",
            True,
        ),
        (
            "{name} was dismissed an hour ago and still has admin rights on our workspace. Please remove that "
            "access immediately.",
            True,
        ),
    ],
    "other": [
        ("Would you consider an integration with {tool}? Our whole team works in it every day.", False),
        ("Are you hiring a {role}? I would love to send you my CV.", False),
        ("Do you run an affiliate programme for bloggers who recommend your product?", False),
        ("Could you add a Gantt chart view? It would make planning long projects much easier.", False),
        ("Is there an official SDK for {language2}, or only the REST API?", False),
        ("May I use screenshots of your app in a blog post I'm writing about remote work?", False),
        ("Where is your company based, and do you have an office in {city}?", False),
        ("Do you offer onboarding webinars or training sessions for new teams?", False),
        ("Just a note to say thank you: {name} from your team was really helpful last week.", False),
        ("Will your team be at {conference} this year? We'd like to meet in person.", False),
        ("Is there a printable cheat sheet of all the keyboard shortcuts?", False),
        ("Does the product work offline, for example on a long flight?", False),
        ("It would be great if the mobile app had a home-screen widget for today's tasks.", False),
        ("I'm a reporter at {paper} and my deadline is {soon}. Could someone comment on {topic}?", True),
        ("We choose between you and another vendor at a meeting {soon}. Do you support {tool} out of the box?", True),
        (
            "A client's security questionnaire is due {soon}. Do you have a SOC 2 report or a "
            "security whitepaper we can cite?",
            True,
        ),
        ("I'm running a workshop on your tool {soon}. Do you have a slide deck or sample project I could use?", True),
    ],
}
SLOTS["language2"] = ("Python", "Go", "Java", "Ruby", "C#", "Kotlin", "Swift")


def fill(template: str, rng: random.Random) -> str:
    """Fill every `{slot}` with a value drawn from SLOTS; `{slot2}` draws from the same list as `{slot}` but a
    different value."""
    chosen: dict[str, str] = {}
    for _, field, _, _ in string.Formatter().parse(template):
        if field is None or field in chosen:
            continue
        base = field.rstrip("0123456789") if field not in SLOTS else field
        pool = [v for v in SLOTS[base] if v not in chosen.values()]
        chosen[field] = rng.choice(pool)
    return template.format(**chosen)


def triage_examples(rng: random.Random, system: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for category in CATEGORIES:
        templates = TRIAGE_TEMPLATES[category]
        count, i = 0, 0
        while count < TRIAGE_PER_CATEGORY:
            template, urgent = templates[i % len(templates)]
            i += 1
            body = fill(template, rng)
            opener = rng.choice(OPENERS)
            closer = fill(rng.choice(CLOSERS), rng)
            prompt = f"{opener}{body[0].upper()}{body[1:]}{closer}"
            if prompt in seen:
                continue
            seen.add(prompt)
            count += 1
            answer = json.dumps({"category": category, "urgent": urgent})
            out.append(_example(f"triage-{category}-{count:03d}", "triage", system, prompt, answer))
    return out


# ---------------------------------------------------------------------------------------------------------------
# terse: short instructions with answers computed here
# ---------------------------------------------------------------------------------------------------------------

CAPITALS = (
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Canada", "Ottawa"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Norway", "Oslo"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Greece", "Athens"),
    ("Portugal", "Lisbon"),
    ("Ireland", "Dublin"),
    ("Poland", "Warsaw"),
    ("Thailand", "Bangkok"),
    ("Sweden", "Stockholm"),
    ("Austria", "Vienna"),
    ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"),
    ("Hungary", "Budapest"),
    ("Turkey", "Ankara"),
    ("Belgium", "Brussels"),
    ("Cuba", "Havana"),
)
OPPOSITES = (
    ("hot", "cold"),
    ("early", "late"),
    ("empty", "full"),
    ("heavy", "light"),
    ("win", "lose"),
    ("buy", "sell"),
    ("above", "below"),
    ("day", "night"),
    ("north", "south"),
    ("east", "west"),
    ("inside", "outside"),
    ("true", "false"),
    ("first", "last"),
    ("push", "pull"),
    ("wet", "dry"),
    ("loud", "quiet"),
)
FACT_NUMBERS = (
    ("How many days are there in a leap year?", 366),
    ("How many hours are there in one day?", 24),
    ("How many minutes make one hour?", 60),
    ("How many months are there in a year?", 12),
    ("How many seconds make one minute?", 60),
    ("How many wheels does a tricycle have?", 3),
    ("How many days are there in a fortnight?", 14),
    ("How many hours are there in a week?", 24 * 7),
    ("How many zeros are there in one million written in digits?", 6),
    ("How many weeks are there in a year, rounded down?", 52),
    ("How many continents are there on Earth, by the usual count?", 7),
    ("How many players does a football (soccer) team have on the pitch?", 11),
    ("How many days are there in the month of September?", 30),
    ("How many strings does a standard violin have?", 4),
)
WORDS = (
    "planet",
    "window",
    "garden",
    "rocket",
    "pencil",
    "blanket",
    "dolphin",
    "lantern",
    "harbour",
    "meadow",
    "thunder",
    "biscuit",
    "castle",
    "orchard",
    "volcano",
    "compass",
)
SEQUENCES = (
    ("months of the year", ("January", "February", "March", "April", "May", "June", "July", "August")),
    ("days of the week, starting with Monday", ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")),
    ("planets in order from the Sun", ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn")),
    ("letters of the English alphabet", ("A", "B", "C", "D", "E", "F", "G")),
    ("colours of the rainbow, in order", ("Red", "Orange", "Yellow", "Green", "Blue", "Indigo", "Violet")),
    ("positive even numbers", ("2", "4", "6", "8", "10", "12")),
)
SENTENCES = (
    "the train leaves at six",
    "please close the door quietly",
    "our team won the final match",
    "bring a warm coat tomorrow",
    "the library opens at nine",
    "turn left after the bridge",
    "dinner is ready in ten minutes",
    "the package arrived this afternoon",
    "keep the receipt for your records",
    "the meeting moved to room four",
)
PUNCTUATED = (
    "Hello, World! How are you today?",
    "Wait... is it Friday already?!",
    "Yes: we will meet at the café, near Platform 9.",
    "Stop! Do not touch that button; it is hot.",
    "Apples, pears, and plums (all ripe) are on sale.",
    "Well, that is that; see you on Monday!",
    "Great news: the Q3 report is DONE.",
    "Oh no! The cat knocked over the vase, again.",
)
SORT_SETS = (
    ("pear", "apple", "fig"),
    ("zebra", "lion", "otter", "bear"),
    ("violet", "amber", "teal"),
    ("tuesday", "monday", "sunday", "friday"),
    ("oak", "birch", "maple", "cedar", "ash"),
    ("copper", "iron", "gold", "zinc"),
    ("rome", "oslo", "lima", "kyiv"),
    ("piano", "drum", "flute", "harp"),
)


def _strip_punctuation(text: str) -> str:
    kept = "".join(" " if ch in string.punctuation or ch in "…" else ch for ch in text.lower())
    return " ".join(kept.split())


def _terse_makers() -> list[tuple[str, Callable[[random.Random], tuple[str, str]]]]:
    def capital(rng: random.Random) -> tuple[str, str]:
        country, city = rng.choice(CAPITALS)
        return rng.choice(
            (
                (f"Name the capital city of {country}. Answer with one word only.", city),
                (f"One word only, please: which city is the capital of {country}?", city),
            )
        )

    def numeral_sum(rng: random.Random) -> tuple[str, str]:
        a, b = rng.randint(11, 89), rng.randint(11, 89)
        return f"Add {a} and {b}. Give the result as a numeral and nothing else.", str(a + b)

    def numeral_product(rng: random.Random) -> tuple[str, str]:
        a, b = rng.randint(3, 12), rng.randint(3, 19)
        return f"Compute {a} × {b}. Reply with the number only.", str(a * b)

    def numeral_difference(rng: random.Random) -> tuple[str, str]:
        a = rng.randint(50, 150)
        b = rng.randint(1, a - 1)
        return f"Subtract {b} from {a}. Only the number, no words.", str(a - b)

    def numeral_fact(rng: random.Random) -> tuple[str, str]:
        question, value = rng.choice(FACT_NUMBERS)
        return f"{question} Reply with a numeral only.", str(value)

    def yes_no_even(rng: random.Random) -> tuple[str, str]:
        n = rng.randint(10, 999)
        return f"Answer YES or NO only: is {n} an even number?", "YES" if n % 2 == 0 else "NO"

    def yes_no_greater(rng: random.Random) -> tuple[str, str]:
        a, b = rng.sample(range(10, 500), 2)
        return f"Answer YES or NO only: is {a} greater than {b}?", "YES" if a > b else "NO"

    def yes_no_divisible(rng: random.Random) -> tuple[str, str]:
        n, k = rng.randint(20, 300), rng.choice((3, 4, 5, 9))
        return f"Is {n} divisible by {k}? Respond with YES or NO in capitals, nothing more.", (
            "YES" if n % k == 0 else "NO"
        )

    def json_sum_product(rng: random.Random) -> tuple[str, str]:
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        answer = json.dumps({"sum": a + b, "product": a * b})
        return (
            f'Output just a JSON object with the keys "sum" and "product" for the numbers {a} and {b}. No code fences.',
            answer,
        )

    def json_word_length(rng: random.Random) -> tuple[str, str]:
        word = rng.choice(WORDS)
        return (
            f'Return only JSON: an object with "word" set to "{word}" and "letters" set to its number of letters.',
            json.dumps({"word": word, "letters": len(word)}),
        )

    def json_capital(rng: random.Random) -> tuple[str, str]:
        country, city = rng.choice(CAPITALS)
        return (
            f'Give a JSON object only, with the keys "country" and "capital", for {country}.',
            json.dumps({"country": country, "capital": city}),
        )

    def uppercase(rng: random.Random) -> tuple[str, str]:
        sentence = rng.choice(SENTENCES)
        return f"Convert to capital letters and output nothing else: {sentence}", sentence.upper()

    def lowercase(rng: random.Random) -> tuple[str, str]:
        text = rng.choice(PUNCTUATED)
        return (
            f"Rewrite this in lowercase letters with all punctuation removed, and write nothing else: {text}",
            _strip_punctuation(text),
        )

    def bullets(rng: random.Random) -> tuple[str, str]:
        what, items = rng.choice(SEQUENCES)
        n = rng.randint(3, min(5, len(items)))
        return (
            f'Write the first {n} {what} as a list, one per line, each line starting with "- ". No other text.',
            "\n".join(f"- {item}" for item in items[:n]),
        )

    def opposite(rng: random.Random) -> tuple[str, str]:
        word, answer = rng.choice(OPPOSITES)
        return f'What is the opposite of "{word}"? Use a single word.', answer

    def letters(rng: random.Random) -> tuple[str, str]:
        word = rng.choice(WORDS)
        return f'Count the letters in "{word}". Answer with the numeral alone.', str(len(word))

    def reverse(rng: random.Random) -> tuple[str, str]:
        word = rng.choice(WORDS)
        return f'Spell "{word}" backwards. Output only the reversed word.', word[::-1]

    def sort_words(rng: random.Random) -> tuple[str, str]:
        words = list(rng.choice(SORT_SETS))
        rng.shuffle(words)
        return (
            f"Put these words in alphabetical order, separated by commas, with nothing else: {', '.join(words)}",
            ", ".join(sorted(words)),
        )

    return [
        ("capital", capital),
        ("sum", numeral_sum),
        ("product", numeral_product),
        ("difference", numeral_difference),
        ("fact", numeral_fact),
        ("even", yes_no_even),
        ("greater", yes_no_greater),
        ("divisible", yes_no_divisible),
        ("json-sum", json_sum_product),
        ("json-word", json_word_length),
        ("json-capital", json_capital),
        ("upper", uppercase),
        ("lower", lowercase),
        ("bullets", bullets),
        ("opposite", opposite),
        ("letters", letters),
        ("reverse", reverse),
        ("sort", sort_words),
    ]


def terse_examples(rng: random.Random, systems: Sequence[str]) -> list[dict[str, Any]]:
    makers = _terse_makers()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    i = 0
    while len(out) < TERSE_COUNT:
        kind, make = makers[i % len(makers)]
        i += 1
        prompt, answer = make(rng)
        if prompt in seen:
            continue
        seen.add(prompt)
        n = len(out) + 1
        out.append(_example(f"terse-{kind}-{n:03d}", "terse", systems[n % len(systems)], prompt, answer))
    return out


def _example(id_: str, task: str, system: str, prompt: str, response: str) -> dict[str, Any]:
    return {
        "id": id_,
        "task": task,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        "response": response,
    }


def generate() -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    triage = triage_examples(rng, suite_system("support_triage.yaml"))
    terse = terse_examples(rng, (suite_system("format_following.yaml"), suite_system("factual_qa.yaml")))
    return triage + terse


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSONL (default: %(default)s)")
    args = parser.parse_args(argv)
    rows = generate()
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    tasks = {t: sum(1 for r in rows if r["task"] == t) for t in ("triage", "terse")}
    print(f"wrote {args.out}: {len(rows)} examples ({tasks['triage']} triage, {tasks['terse']} terse)")


if __name__ == "__main__":
    main()
