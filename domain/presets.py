"""Keyword presets: ready lists an operator starts from and edits (README, "Keyword rules").

A preset fills the opt-in, opt-out and help lists only; messages, custom keywords and double
opt-in keywords stay as they are. Sources are named in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsdesk.domain.credential import DEFAULT_HELP, DEFAULT_OPT_IN, DEFAULT_OPT_OUT


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    opt_in_keywords: tuple[str, ...]
    opt_out_keywords: tuple[str, ...]
    help_keywords: tuple[str, ...]

    def fields(self) -> dict[str, list[str]]:
        return {"opt_in_keywords": list(self.opt_in_keywords), "opt_out_keywords": list(self.opt_out_keywords),
                "help_keywords": list(self.help_keywords)}


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("ajo", "Journey Optimizer defaults", tuple(DEFAULT_OPT_IN), tuple(DEFAULT_OPT_OUT), tuple(DEFAULT_HELP)),
    # FCC 2025 (47 CFR 64.1200(a)(10)) names STOP, QUIT, END, REVOKE, OPT OUT, CANCEL, UNSUBSCRIBE;
    # CTIA and the US carriers add STOPALL and OPTOUT, and INFO as a help word.
    Preset("us", "US: FCC 2025 + CTIA", tuple(DEFAULT_OPT_IN),
           (*DEFAULT_OPT_OUT, "REVOKE", "OPT OUT", "OPTOUT", "STOPALL"), ("HELP", "INFO")),
    # STOP is kept in every language pack: it is what people send whatever the language.
    Preset("fr", "French", ("OUI", "START", "ABONNER", "INSCRIRE", "REPRENDRE"),
           ("STOP", "ARRÊT", "ARRÊTER", "DÉSABONNER", "DÉSINSCRIRE", "ANNULER", "FIN"), ("AIDE", "INFO")),
    Preset("es", "Spanish", ("SÍ", "START", "ALTA", "SUSCRIBIR", "EMPEZAR"),
           ("STOP", "PARAR", "BAJA", "CANCELAR", "DETENER", "ALTO", "FIN"), ("AYUDA", "INFO")),
    Preset("de", "German", ("JA", "START", "ANMELDEN", "ABONNIEREN"),
           ("STOP", "STOPP", "ABMELDEN", "ABBESTELLEN", "KÜNDIGEN", "ENDE"), ("HILFE", "INFO")),
)}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}") from None
