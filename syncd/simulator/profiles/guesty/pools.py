"""Precomputed JSON fragments that Guesty records are assembled from.

Rendering 100 listings must cost well under a millisecond, so every piece of text that
does not depend on a record's index is JSON-encoded once, here, at import time. A record
then picks fragments by bits of its hash. Pools are sized as powers of two so picking is
a mask, and they are built deterministically (no ``random``), so a seed means the same
bytes on every machine.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

import orjson


class City(NamedTuple):
    city: str
    state: str
    country: str
    zipcode: str
    timezone: str
    # Standard UTC offset in minutes. DST is ignored on purpose: the dataset must be
    # identical on machines with and without a tz database, and a 15:00 local check-in
    # never crosses a date boundary either way.
    utc_offset_min: int
    currency: str
    lat: float
    lng: float
    streets: tuple[str, ...]


# city | state | country | zipcode | timezone | UTC offset (min) | currency | lat | lng | streets
_CITY_TABLE = """
Paris|Île-de-France|France|75001|Europe/Paris|60|EUR|48.8566|2.3522|Rue de Rivoli;Rue Oberkampf
Lisboa|Lisboa|Portugal|1100-148|Europe/Lisbon|0|EUR|38.7223|-9.1393|Rua Augusta;Rua do Açúcar
São Paulo|SP|Brazil|01310-100|America/Sao_Paulo|-180|BRL|-23.5505|-46.6333|Avenida Paulista;Rua Oscar Freire
Zürich|ZH|Switzerland|8001|Europe/Zurich|60|CHF|47.3769|8.5417|Bahnhofstrasse;Niederdorfstrasse
Kraków|Małopolskie|Poland|31-042|Europe/Warsaw|60|PLN|50.0647|19.945|Floriańska;Grodzka;Józefa
Malmö|Skåne|Sweden|211 22|Europe/Stockholm|60|SEK|55.605|13.0038|Södergatan;Stortorget
New York|NY|United States|10013|America/New_York|-300|USD|40.7128|-74.006|Broadway;Mulberry Street
Austin|TX|United States|78701|America/Chicago|-360|USD|30.2672|-97.7431|Congress Avenue;South Lamar Blvd
Miami Beach|FL|United States|33139|America/New_York|-300|USD|25.7907|-80.13|Collins Avenue;Ocean Drive
Denver|CO|United States|80202|America/Denver|-420|USD|39.7392|-104.9903|Larimer Street;Blake Street
Los Angeles|CA|United States|90028|America/Los_Angeles|-480|USD|34.0522|-118.2437|Sunset Blvd;Hollywood Blvd
Honolulu|HI|United States|96815|Pacific/Honolulu|-600|USD|21.3069|-157.8583|Kalākaua Avenue;Lewers Street
Ciudad de México|CDMX|Mexico|06700|America/Mexico_City|-360|MXN|19.4326|-99.1332|Calle Colima;Álvaro Obregón
Reykjavík|Höfuðborgarsvæðið|Iceland|101|Atlantic/Reykjavik|0|ISK|64.1466|-21.9426|Laugavegur;Skólavörðustígur
Cape Town|Western Cape|South Africa|8001|Africa/Johannesburg|120|ZAR|-33.9249|18.4241|Long Street;Bree Street
Sydney|NSW|Australia|2000|Australia/Sydney|600|AUD|-33.8688|151.2093|George Street;Bondi Road
Tōkyō|東京都|Japan|150-0002|Asia/Tokyo|540|JPY|35.6762|139.6503|Shibuya 2-chōme;Omotesandō
Barcelona|Catalunya|Spain|08002|Europe/Madrid|60|EUR|41.3874|2.1686|Carrer de Ferran;Passeig de Gràcia
Dubai|Dubai|United Arab Emirates|00000|Asia/Dubai|240|AED|25.2048|55.2708|Al Wasl Road;Jumeirah Beach Road
Auckland|Auckland|New Zealand|1010|Pacific/Auckland|720|NZD|-36.8485|174.7633|Queen Street;Ponsonby Road
"""


def _parse_cities(table: str) -> tuple[City, ...]:
    cities = []
    for line in table.strip().splitlines():
        city, state, country, zipcode, tz, offset, currency, lat, lng, streets = line.split("|")
        cities.append(
            City(
                city,
                state,
                country,
                zipcode,
                tz,
                int(offset),
                currency,
                float(lat),
                float(lng),
                tuple(streets.split(";")),
            )
        )
    return tuple(cities)


CITIES = _parse_cities(_CITY_TABLE)


def _words(text: str) -> tuple[str, ...]:
    """A ``|``-separated list over several lines (entries may contain spaces and be empty)."""
    return tuple(w.strip("\n") for w in text.strip("\n").replace("|\n", "|").split("|"))


_ADJECTIVES = _words(
    """
Sunny|Cozy|Modern|Charming|Spacious|Quiet|Bright|Rustic|Elegant|Stylish|Hidden|Historic|Gemütlich|
Très chic|Peaceful|Central
"""
)
_KINDS = _words(
    """
Loft|Studio|Apartment|Villa|Cabin|Townhouse|Penthouse|Cottage|Bungalow|Condo|Flat|Suite|Château|
Casa Açaí|Maisonette|Guesthouse
"""
)
_TAILS = _words(
    """
near the beach|with rooftop terrace|in the old town|by the park|with pool|— city views|
steps from metro|with garden|for families|for digital nomads|🌊 ocean view|✨ newly renovated|
with sauna|downtown|with free parking|🏔️ mountain view
"""
)
_AMENITIES = _words(
    """
Wifi|Kitchen|Heating|Air conditioning|Washer|Dryer|TV|Iron|Hair dryer|Essentials|Shampoo|Hangers|
Smoke detector|Carbon monoxide detector|Free parking|Pool|Hot tub|Gym|Elevator|Dishwasher|
Coffee maker|Microwave|Balcony|Patio|BBQ grill|Crib|High chair|Fireplace|Workspace|Self check-in|
Lockbox|Pets allowed|Beach access|Lake access|EV charger|Bathtub|Outdoor shower|Garden|Sound system|
Board games
"""
)
_TAG_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("beach",),
    ("family",),
    ("premium",),
    ("beach", "family"),
    ("city", "business"),
    ("pet-friendly",),
    ("long-stay", "discount"),
)
_CAPTIONS = _words(
    """
Living room|Bedroom|Kitchen|Bathroom|View from the balcony|Entrance|Terrace|Dining area|Pool|Garden|
Master bedroom|Workspace|Façade|Salle de bain||Rooftop 🌇
"""
)
_FIRST_NAMES = _words(
    """
Anna|José|Zoë|Łukasz|Søren|Mei|Olivia|Liam|Noah|Chloé|Mateo|Aiko|Björn|Fatima|Ingrid|Raj
"""
)
_LAST_NAMES = _words(
    """
García|Smith|Müller|Kowalski|Nguyen|O'Brien|Rossi|Tanaka|Dubois|Johansson|Silva|Novák|Papadopoulos|
Brown|Özdemir|Cohen
"""
)

_SOURCES_TEXT = _words(
    """
airbnb2|airbnb2|airbnb2|bookingCom|bookingCom|manual|homeaway|website
"""
)
SOURCES: tuple[bytes, ...] = tuple(w.encode() for w in _SOURCES_TEXT)
_STATUSES_TEXT = _words(
    """
confirmed|confirmed|confirmed|confirmed|confirmed|confirmed|confirmed|reserved|reserved|inquiry|
inquiry|canceled|canceled|canceled|checked_in|checked_out
"""
)
STATUSES: tuple[bytes, ...] = tuple(w.encode() for w in _STATUSES_TEXT)
# Where a reservation update moves its status; terminal states bounce back or stay.
NEXT_STATUS: dict[bytes, tuple[bytes, bytes]] = {
    b"inquiry": (b"reserved", b"canceled"),
    b"reserved": (b"confirmed", b"canceled"),
    b"confirmed": (b"canceled", b"checked_in"),
    b"checked_in": (b"checked_out", b"checked_out"),
    b"checked_out": (b"checked_out", b"checked_out"),
    b"canceled": (b"confirmed", b"canceled"),
}


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def _ascii(text: str) -> str:
    """Email-safe spelling of a name: accents dropped (José → Jose)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _build_titles() -> tuple[bytes, ...]:
    titles = []
    for k in range(1024):
        adjective = _ADJECTIVES[k % 16]
        kind = _KINDS[(k // 16) % 16]
        tail = _TAILS[(k * 7 + k // 64) % 16]
        titles.append(_json(f"{adjective} {kind} {tail}"))
    return tuple(titles)


def _build_nicknames() -> tuple[bytes, ...]:
    return tuple(
        b',"nickname":' + _json(f"{CITIES[k % len(CITIES)].city[:3].upper()}-{_KINDS[k % 16][:4]}-{k:04d}")
        for k in range(4096)
    )


def _build_rooms() -> tuple[bytes, ...]:
    rooms = []
    for k in range(64):
        accommodates = 1 + (k * 5) % 12
        bedrooms = max(0, (accommodates - 1) // 2)
        bathrooms = (1.0, 1.5, 2.0, 2.5, 3.0)[min(4, bedrooms // 2 + k % 2)]
        kind = "MTL" if k % 10 == 3 else "SINGLE"
        rooms.append(
            b',"type":"%s","accommodates":%d,"bedrooms":%d,"bathrooms":%s'
            % (kind.encode(), accommodates, bedrooms, repr(bathrooms).encode())
        )
    return tuple(rooms)


class Place(NamedTuple):
    """A timezone + address fragment; ``bare`` is the same place with ``address`` missing."""

    full: bytes
    bare: bytes
    currency: bytes
    utc_offset_min: int


def _build_places() -> tuple[Place, ...]:
    places = []
    for k in range(1024):
        city = CITIES[k % len(CITIES)]
        street = f"{1 + (k * 37) % 240} {city.streets[(k // len(CITIES)) % len(city.streets)]}"
        jitter = ((k * 7919) % 2001 - 1000) / 40_000
        address = {
            "full": f"{street}, {city.zipcode} {city.city}, {city.country}",
            "street": street,
            "city": city.city,
            "state": city.state,
            "zipcode": city.zipcode,
            "country": city.country,
            "lat": round(city.lat + jitter, 6),
            "lng": round(city.lng - jitter, 6),
        }
        check_in, check_out = (("15:00", "11:00"), ("16:00", "10:00"), ("14:00", "11:00"))[k % 3]
        bare = b',"timezone":%s,"defaultCheckInTime":"%s","defaultCheckOutTime":"%s"' % (
            _json(city.timezone),
            check_in.encode(),
            check_out.encode(),
        )
        places.append(
            Place(bare + b',"address":' + _json(address), bare, city.currency.encode(), city.utc_offset_min)
        )
    return tuple(places)


def _build_amenities() -> tuple[bytes, ...]:
    pool = []
    n = len(_AMENITIES)
    for k in range(256):
        count = 10 + k % 6
        start = (k * 11) % n
        picked = [_AMENITIES[(start + step * 3) % n] for step in range(count)]
        pool.append(b',"amenities":' + _json(list(dict.fromkeys(picked))))
    return tuple(pool)


def _build_flags() -> tuple[bytes, ...]:
    flags = []
    for k in range(128):
        active = k % 32 != 5
        listed = active and k % 10 != 7
        tags = _TAG_SETS[k % len(_TAG_SETS)]
        flags.append(
            b',"active":%s,"listed":%s,"tags":%s' % (_json(active), _json(listed), _json(list(tags)))
        )
    return tuple(flags)


def _build_guests() -> tuple[bytes, ...]:
    guests = []
    for k in range(4096):
        first = _FIRST_NAMES[k % 16]
        last = _LAST_NAMES[(k // 16) % 16]
        local = _ascii(f"{first}.{last}").replace("'", "").lower()
        guest = {
            "fullName": f"{first} {last}",
            "email": f"{local}{k // 256}@example.com",
            "phone": f"+1 555 {(k * 7919) % 10_000:04d}",
        }
        guests.append(b',"guest":' + _json(guest))
    return tuple(guests)


TITLES = _build_titles()
NICKNAMES = _build_nicknames()
ROOMS = _build_rooms()
ROOMS_MALFORMED = b',"type":"SINGLE","accommodates":"many","bedrooms":1,"bathrooms":1.0'
PLACES = _build_places()
AMENITIES = _build_amenities()
FLAGS = _build_flags()
CAPTIONS: tuple[bytes, ...] = tuple(_json(c) for c in _CAPTIONS)
GUESTS = _build_guests()
