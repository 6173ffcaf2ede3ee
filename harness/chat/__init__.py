"""Chat with a bot as a visitor would, on a local page: the visitor's side as iAdvize shows it, beside an inspector
of every call (its status, latency against its budget, bodies, and the findings of check's rules on it).

:mod:`.session` drives one conversation on the simulated iAdvize platform; :mod:`.app` serves the page (Flask,
every asset in the wheel, no build step, no CDN). ``iadvize-harness chat`` starts both.
"""
