"""What the demo's simulated reporter posts: the sample night as written, then a story that
keeps moving for as long as the demo runs.

After the script, each post moves the story's clock on by a quarter of an hour. The crowd on
the square follows the hours of the day and the mood of the week, the count of people detained
only grows, and a few one-off developments land on the days they are due. Every generated post
names its day and time, so no two are the same, and neither are any two key events. Everything
is fictional; the sequence is the same on every run, so a restarted demo picks up where it was.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).with_name("sample_story.json")
STEP_MINUTES = 15
FIRST_DAY, FIRST_HOUR = 3, 6  # the script ends in the small hours of day 3, a Tuesday
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")  # day 1: the vote

# Hour of the day -> share of the evening's peak crowd on the square.
SHAPE = (0.25, 0.15, 0.06, 0.03, 0.02, 0.02, 0.03, 0.05, 0.08, 0.12, 0.15, 0.18,
         0.22, 0.25, 0.28, 0.33, 0.42, 0.55, 0.75, 0.92, 1.0, 0.95, 0.75, 0.45)
TEMPERATURE = (1, 0, 0, -1, -1, -1, 0, 1, 2, 3, 5, 6, 7, 7, 8, 7, 6, 5, 4, 3, 3, 2, 2, 1)

# One-off developments: (day, hour, minute slot) -> (key event?, text).
DEVELOPMENTS: dict[tuple[int, int, int], tuple[bool, str]] = {
    (3, 9, 0): (True, "District courts have begun hearing the cases of people detained overnight. Lawyers "
                      "from the Tessel Legal Aid Network say hearings last a few minutes each."),
    (3, 11, 2): (True, "Mira Solvane's lawyers have filed her challenge at the **Constitutional Court**. "
                       "The court has ten days to decide whether to hear it."),
    (3, 15, 1): (False, "Ilya Marten, Solvane's deputy campaign chief, has been given **ten days** in custody "
                        "for organising an unauthorised gathering, his lawyer says."),
    (4, 10, 1): (True, "Foreign ministers of the Council of Northern States have agreed to prepare **travel "
                       "bans** on officials they hold responsible for the crackdown."),
    (4, 17, 3): (False, "The Kelvarian Union of Journalists says every reporter detained on Monday night has "
                        "now been released."),
    (5, 7, 0): (True, "The **general strike** Solvane called for has begun. Trams in Dravonne are running a "
                      "reduced timetable and several large shops on Castellan Avenue have not opened."),
    (5, 12, 2): (False, "The Interior Ministry says the strike is \"a failure\" and that most businesses are "
                        "working normally. Our reporters counted a third of the shops on Castellan Avenue shut."),
    (6, 13, 0): (True, "The Constitutional Court has agreed to hear Solvane's challenge. The first hearing is "
                       "set for the middle of next week."),
    (7, 18, 1): (False, "Church bells rang across the old town at six o'clock, as opposition groups had "
                        "asked, for the people still in custody."),
    (8, 16, 0): (True, "President Vesk has offered talks with \"responsible members of the opposition\", "
                       "without naming anyone. Solvane's campaign says it will answer in the evening."),
}
SCENES = (
    "Volunteers are handing out tea from a folding table by the metro entrance.",
    "A brass band from the conservatoire is playing on the steps of the old bourse.",
    "Police vans are parked nose to tail along the Sarn embankment.",
    "People are writing the names of the detained on strips of white cloth tied to the railings.",
    "A drone has been circling over the square for the past few minutes.",
    "The flower sellers by the tram stop have run out of carnations.",
    "Students from the technical university have arrived in a column, chanting the names of their districts.",
    "Street cleaners are sweeping up placards left from the night before.",
)
LAWYERS_NEWS = (
    "Our lawyers are still kept out of two district stations.",
    "Families are queuing outside the courts with parcels of warm clothes.",
    "Some were let go without charge, after a night on a bench.",
)
SPEAKERS = (
    ("Col. Pavel Drusk", "Interior Ministry spokesman"),
    ("Sofia Arenn", "lawyer, Tessel Legal Aid Network"),
    ("Mira Solvane", "opposition presidential candidate"),
)


DETAINED_BLOCK = "People detained in Dravonne since Monday"  # the sample's block the count goes to


@dataclass
class _State:
    crowd: int = 0  # police cleared the square in the night
    detained: int = 171  # the legal aid network's count when the script ends


def load_sample() -> dict[str, Any]:
    """The story, its first updates (seeded) and the night's script (posted live)."""
    sample: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return sample


def scripted() -> list[dict[str, Any]]:
    return list(load_sample()["live_pool"])


def updates(start: int = 0) -> Iterator[dict[str, Any]]:
    """The reporter's posts, from the `start`-th on (0: the first of the script)."""
    return itertools.islice(itertools.chain(scripted(), generated()), start, None)


def _peak(day: int) -> int:
    """The evening's crowd: it builds towards the strike on day 5, then slowly ebbs and flows."""
    build = 1 + 0.8 * math.exp(-((day - 5) ** 2) / 4)
    wave = 1 + 0.25 * math.sin(day / 1.7)
    noise = random.Random(day).uniform(0.85, 1.15)  # noqa: S311 - a story, not a secret
    return max(800, int(6000 * build * wave * noise / (1 + max(0, day - 8) / 10)))


def _figure(number: int) -> str:
    return f"{number:,}"


def _label(day: int, hour: int, minute: int) -> str:
    return f"**{WEEKDAYS[(day - 1) % 7]}, day {day}, {hour:02d}:{minute:02d}.**"


def generated() -> Iterator[dict[str, Any]]:
    """Posts for ever after the script, four an hour of story time."""
    state = _State()
    for hours in itertools.count():
        day, hour = FIRST_DAY + (FIRST_HOUR + hours) // 24, (FIRST_HOUR + hours) % 24
        rng = random.Random(hours * 7919 + 13)  # noqa: S311 - the same story on every run
        before = state.crowd
        state.crowd = max(30, round(_peak(day) * SHAPE[hour] * rng.uniform(0.9, 1.1) / 10) * 10)
        busy = state.crowd / 1000
        new = int(rng.uniform(0, 1.5) * busy * (2.5 if hour >= 19 or hour < 2 else 0.5))
        state.detained += new
        for slot in range(4):
            minute = slot * STEP_MINUTES
            label = _label(day, hour, minute)
            if (day, hour, slot) in DEVELOPMENTS:
                key, text = DEVELOPMENTS[(day, hour, slot)]
                yield {"kind": "text", "body": f"{label} {text}", "key_event": key}
            elif slot == 0:
                yield _crowd(label, state.crowd, before, hour)
            elif slot == 1:
                yield _detentions(label, state.detained, new)
            elif slot == 2:
                yield _quote(rng, day, hour, state)
            else:
                yield {"kind": "text", "body": f"{label} {rng.choice(SCENES)} Our reporter puts the crowd "
                                               f"at about {_figure(state.crowd)}."}


def _crowd(label: str, crowd: int, before: int, hour: int) -> dict[str, Any]:
    peak = SHAPE[hour] == max(SHAPE)  # the evening's biggest hour is a key event, one a day
    if not before:
        trend = "the first back since police cleared it overnight"
    else:
        trend = ("up from" if crowd > before else "down from" if crowd < before else "as many as") + \
            f" about {_figure(before)} an hour ago"
    opening = "The evening rally is at its height." if peak else ""
    body = (f"{label} {opening} Our reporters on Lantern Square estimate **{_figure(crowd)}** people, "
            f"{trend}. It is {TEMPERATURE[hour]}°C.").replace("  ", " ")
    return {"kind": "text", "body": body, "key_event": peak}


def _detentions(label: str, detained: int, new: int) -> dict[str, Any]:
    ministry = int(detained * 0.68)
    hundred = detained // 100 * 100
    milestone = detained - new < hundred
    said = f"**{new}** more people detained in the past hour" if new else "no new detentions in the past hour"
    since = f", past {_figure(hundred)} for the first time" if milestone else ""
    return {"kind": "text", "body": (f"{label} The Tessel Legal Aid Network reports {said}: its count since "
                                     f"Sunday is now **{_figure(detained)}**{since}. The Interior Ministry's "
                                     f"figure is {_figure(ministry)}."),
            # Passing each hundred is a key event (the count only grows: each hundred once).
            "key_event": milestone,
            "figures": {"title": DETAINED_BLOCK, "rows": [
                {"label": "Interior Ministry", "count": ministry, "source": "Interior Ministry"},
                {"label": "Tessel Legal Aid Network", "count": detained, "source": "Tessel Legal Aid Network"}]}}


def _quote(rng: random.Random, day: int, hour: int, state: _State) -> dict[str, Any]:
    speaker, role = SPEAKERS[(day + hour) % len(SPEAKERS)]
    when = f"at {hour:02d}:30 on day {day}"
    if speaker.startswith("Col."):
        body = (f"Public order in the capital is fully under control. The {_figure(state.crowd)} people on "
                f"the square {when} can go home whenever they choose.")
    elif speaker == "Sofia Arenn":
        body = (f"We now know of {_figure(state.detained)} people taken since Sunday. {rng.choice(LAWYERS_NEWS)} "
                f"I told the prosecutor's office so {when}.")
    else:
        body = (f"Day {day}, and {_figure(state.crowd)} of you are still here at {hour:02d}:30, and still "
                "peaceful. That is what frightens them.")
    return {"kind": "quote", "speaker": speaker, "role": role, "body": body}
