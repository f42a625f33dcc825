package embedded

import "github.com/golang-jwt/jwt/v5"

func jwtRegistered(sub string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: sub} }
