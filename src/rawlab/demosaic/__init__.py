"""rawlab.demosaic"""
