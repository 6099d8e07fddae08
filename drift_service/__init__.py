"""Drift statistics (edge vs cloud agreement, feature and prediction drift) and their worker.

Not built yet: the walking skeleton stores the edge stages beside each epoch and the
server model's reference feature statistics in its manifest, which is what drift needs.
"""
