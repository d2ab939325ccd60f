"""Contact plans: the JSON file of contact windows (``plan``) the onboard service reads and
the constellation tooling writes. Only the format lives here, with no orbit code and nothing
beyond the standard library; the orbits that plans are computed from (TLEs, SGP4 and
skyfield, stations, imaging) are the tooling's, ``lab.constellation.orbits``, so neither
service image carries skyfield or sgp4.
"""
