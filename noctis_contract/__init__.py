"""What every part of Noctis must agree on: features, stages, wire and flash formats.

The firmware's C header is generated from this package (see ``noctis_contract.cheader``)
and CI fails when the committed header differs, so the truth lives here only once.
"""
