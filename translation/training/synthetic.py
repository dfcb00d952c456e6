"""A small, seeded, synthetic en->es parallel corpus of chat phrases (numbers, times, days, places, food).

It exists so the whole translation path (``--init tiny`` training, engines, CTranslate2, benchmarks) can run
offline: a tiny model learns this narrow domain in a minute or two on a CPU. It is not a general corpus.

    python -m translation.training.synthetic --out data/translation/chat-en-es.tsv --pairs 4000
    python -m translation.training.synthetic --out data/translation/heldout-en-es.tsv --pairs 200 --seed 101 \
        --exclude data/translation/chat-en-es.tsv     # held-out set for checkpoint evaluation
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

NAMES = ["Ana", "Luis", "Maria", "John", "Sara", "Pedro", "Emma", "Carlos", "Lucia", "David", "Elena", "Tom"]
# (english, spanish with article, gender) ; "a"/"de"/"en" forms are derived from the article.
PLACES = [
    ("the station", "la estación"),
    ("the beach", "la playa"),
    ("the office", "la oficina"),
    ("the park", "el parque"),
    ("the airport", "el aeropuerto"),
    ("the hotel", "el hotel"),
    ("the museum", "el museo"),
    ("the library", "la biblioteca"),
    ("the market", "el mercado"),
    ("the restaurant", "el restaurante"),
    ("the school", "la escuela"),
    ("the hospital", "el hospital"),
    ("the cinema", "el cine"),
    ("the bank", "el banco"),
]
DAYS = [
    ("on Monday", "el lunes"),
    ("on Tuesday", "el martes"),
    ("on Wednesday", "el miércoles"),
    ("on Thursday", "el jueves"),
    ("on Friday", "el viernes"),
    ("on Saturday", "el sábado"),
    ("on Sunday", "el domingo"),
    ("today", "hoy"),
    ("tomorrow", "mañana"),
    ("tonight", "esta noche"),
    ("this weekend", "este fin de semana"),
    ("next week", "la próxima semana"),
]
# (english, spanish bare, spanish with article)
FOODS = [
    ("coffee", "café", "el café"),
    ("tea", "té", "el té"),
    ("pizza", "pizza", "la pizza"),
    ("bread", "pan", "el pan"),
    ("water", "agua", "el agua"),
    ("fruit", "fruta", "la fruta"),
    ("soup", "sopa", "la sopa"),
    ("rice", "arroz", "el arroz"),
    ("chocolate", "chocolate", "el chocolate"),
    ("cheese", "queso", "el queso"),
    ("fish", "pescado", "el pescado"),
    ("chicken", "pollo", "el pollo"),
]
# (english plural, spanish plural)
NOUNS = [
    ("dogs", "perros"),
    ("cats", "gatos"),
    ("books", "libros"),
    ("friends", "amigos"),
    ("brothers", "hermanos"),
    ("tickets", "billetes"),
    ("messages", "mensajes"),
    ("rooms", "habitaciones"),
    ("children", "hijos"),
    ("photos", "fotos"),
    ("cars", "coches"),
    ("questions", "preguntas"),
]
FIXED = [
    ("How are you?", "¿Cómo estás?"),
    ("I am fine, thanks.", "Estoy bien, gracias."),
    ("What are you doing?", "¿Qué estás haciendo?"),
    ("I am at home.", "Estoy en casa."),
    ("I am very tired.", "Estoy muy cansado."),
    ("Sorry, I will be late.", "Lo siento, voy a llegar tarde."),
    ("No problem.", "No hay problema."),
    ("Good night!", "¡Buenas noches!"),
    ("See you later.", "Hasta luego."),
    ("I do not understand.", "No entiendo."),
    ("Can you help me?", "¿Puedes ayudarme?"),
    ("That is a good idea.", "Es una buena idea."),
    ("I agree with you.", "Estoy de acuerdo contigo."),
    ("Happy birthday!", "¡Feliz cumpleaños!"),
    ("Where are you?", "¿Dónde estás?"),
    ("I am hungry.", "Tengo hambre."),
    ("It is very cold.", "Hace mucho frío."),
    ("It is very hot.", "Hace mucho calor."),
    ("Welcome to the room!", "¡Bienvenido a la sala!"),
    ("Let us go!", "¡Vamos!"),
]
TEMPLATES = [
    ("Hello {name}!", "¡Hola {name}!"),
    ("Good morning, {name}.", "Buenos días, {name}."),
    ("Thank you very much, {name}.", "Muchas gracias, {name}."),
    ("See you {day} at {time_en}.", "Nos vemos {day} a {time_es}."),
    ("I am going to {place_en}.", "Voy {a_place}."),
    ("Where is {place_en}?", "¿Dónde está {place}?"),
    ("We are at {place_en}.", "Estamos en {place}."),
    ("{name} is at {place_en}.", "{name} está en {place}."),
    ("I have {n} {noun_en}.", "Tengo {n} {noun}."),
    ("{name} has {n} {noun_en}.", "{name} tiene {n} {noun}."),
    ("Do you want {food_en}?", "¿Quieres {food}?"),
    ("I would like {food_en}, please.", "Quisiera {food}, por favor."),
    ("I love {food_en}.", "Me encanta {food_the}."),
    ("How much is the {food_en}?", "¿Cuánto cuesta {food_the}?"),
    ("It costs {n} euros.", "Cuesta {n} euros."),
    ("The meeting is at {time_en}.", "La reunión es a {time_es}."),
    ("The train leaves at {time_en}.", "El tren sale a {time_es}."),
    ("I will call you {day}.", "Te llamo {day}."),
    ("Can we meet at {place_en} {day}?", "¿Podemos vernos en {place} {day}?"),
    ("There are {n} people at {place_en}.", "Hay {n} personas en {place}."),
    ("{name} and {name2} are coming {day}.", "{name} y {name2} vienen {day}."),
    ("Please send me the file before {time_en}.", "Por favor, envíame el archivo antes de {time_es}."),
    ("My phone number is {phone}.", "Mi número de teléfono es {phone}."),
    ("I am leaving {place_en} now.", "Salgo {de_place} ahora."),
    ("{name} is waiting for you at {place_en}.", "{name} te espera en {place}."),
    ("We need {n} {noun_en} {day}.", "Necesitamos {n} {noun} {day}."),
    ("Is {place_en} open {day}?", "¿Abre {place} {day}?"),
    ("I arrive at {time_en}.", "Llego a {time_es}."),
]


def _a_form(place_es: str) -> str:
    return "al " + place_es[3:] if place_es.startswith("el ") else "a " + place_es


def _de_form(place_es: str) -> str:
    return "del " + place_es[3:] if place_es.startswith("el ") else "de " + place_es


def _time(rng: random.Random) -> tuple[str, str]:
    hour = rng.randint(1, 12)
    minute = rng.choice(["00", "15", "30", "45", "10", "20"])
    clock = f"{hour}:{minute}"
    return clock, ("la " if hour == 1 else "las ") + clock


def generate_pairs(count: int = 4000, seed: int = 7) -> list[tuple[str, str]]:
    """``count`` distinct (english, spanish) pairs (fewer if the templates run out), seeded."""
    rng = random.Random(seed)
    pairs: dict[str, str] = dict(FIXED)
    attempts = 0
    while len(pairs) < count and attempts < count * 50:
        attempts += 1
        template_en, template_es = rng.choice(TEMPLATES)
        place_en, place_es = rng.choice(PLACES)
        food_en, food_es, food_the = rng.choice(FOODS)
        noun_en, noun_es = rng.choice(NOUNS)
        name, name2 = rng.sample(NAMES, 2)
        day_en, day_es = rng.choice(DAYS)
        time_en, time_es = _time(rng)
        number = str(rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50, 100, rng.randint(2, 999)]))
        phone = "".join(str(rng.randint(0, 9)) for _ in range(9))
        common = {"name": name, "name2": name2, "n": number, "phone": phone}
        english = template_en.format(
            place_en=place_en, food_en=food_en, noun_en=noun_en, day=day_en, time_en=time_en, **common
        )
        spanish = template_es.format(
            place=place_es,
            a_place=_a_form(place_es),
            de_place=_de_form(place_es),
            food=food_es,
            food_the=food_the,
            noun=noun_es,
            day=day_es,
            time_es=time_es,
            **common,
        )
        pairs.setdefault(english[0].upper() + english[1:], spanish[0].upper() + spanish[1:])
    items = list(pairs.items())
    rng.shuffle(items)
    return items


def write_tsv(pairs: list[tuple[str, str]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
        writer.writerow(["source", "target"])
        writer.writerows(pairs)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/translation/chat-en-es.tsv")
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--exclude", help="a TSV whose source sentences must not appear (a held-out set)")
    options = parser.parse_args(argv)
    if options.exclude:
        from translation.training.common import read_records

        seen = {record["source"] for record in read_records(options.exclude)}
        candidates = generate_pairs(options.pairs + len(seen), options.seed)
        pairs = [pair for pair in candidates if pair[0] not in seen][: options.pairs]
    else:
        pairs = generate_pairs(options.pairs, options.seed)
    path = write_tsv(pairs, options.out)
    print(f"wrote {len(pairs)} pairs to {path}")


if __name__ == "__main__":
    main()
