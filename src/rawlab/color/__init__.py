"""rawlab.color"""
