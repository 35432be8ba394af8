"""rawlab.geometry"""
