"""Test and benchmark scaffolding, kept out of the app packages (no app imports this package).

One module per concern:

* ``cast``: the two-center cast every test needs (``build_cast``, ``PASSWORD``);
* ``imaging``: patients, sessions and images made through the real upload service;
* ``jobs``: synthetic fields, ORM-made images, the tiny model bundle and the jobs/results "world";
* ``review``: images with a display PNG and circular model detections;
* ``validation``: validation studies in every state, with a planted ground truth.
"""
