"""rawlab.io"""
