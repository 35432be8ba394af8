"""rawlab.sensor"""
