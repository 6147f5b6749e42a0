"""The laptop stack: the product's handlers against moto, the demo, ``clickstream serve`` and the traffic generator."""
