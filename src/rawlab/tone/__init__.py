"""rawlab.tone"""
