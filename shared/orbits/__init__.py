"""Orbits, contact plans and imaging plans, offline.

``tle`` reads two-line element sets and generates a larger constellation from them as a
documented pattern; ``stations`` reads ground-station coordinates; ``contacts`` propagates
the orbits (skyfield over sgp4) into contact windows with a link rate per window;
``imaging`` decides which targets each satellite captures when; ``plan`` is the contact
plan's JSON format, which the onboard service reads without any orbit code (no skyfield
import). Nothing here touches the network: skyfield's built-in timescale, no ephemeris
files, no TLE downloads.
"""
