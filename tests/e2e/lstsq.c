/*
 * lstsq.c: the least-squares solution of a linear regression, in double, by
 * the normal equations: the reference linreg.nn's trained weights must match.
 *
 *   lstsq DATA.csv K      DATA has a header row, K feature columns, then y
 *
 * The features are standardized as the runtime's --standardize does (mean 0,
 * population standard deviation 1); prints the K weights, then the bias,
 * one per line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXK 64
#define MAXN 100000

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    FILE *f = fopen(argv[1], "r");
    int k = atoi(argv[2]);
    if (!f || k < 1 || k > MAXK)
        return 2;
    static double X[MAXN][MAXK + 1], y[MAXN];
    char line[65536];
    int n = 0;
    if (!fgets(line, sizeof line, f)) /* header */
        return 2;
    while (n < MAXN && fgets(line, sizeof line, f)) {
        char *p = line;
        int j;
        for (j = 0; j <= k; j++) {
            char *end;
            double v = strtod(p, &end);
            if (end == p)
                break;
            if (j < k)
                X[n][j] = v;
            else
                y[n] = v;
            p = end + (*end == ',');
        }
        if (j == k + 1)
            n++;
    }
    fclose(f);
    for (int j = 0; j < k; j++) {
        double mu = 0, var = 0;
        for (int i = 0; i < n; i++)
            mu += X[i][j];
        mu /= n;
        for (int i = 0; i < n; i++)
            var += (X[i][j] - mu) * (X[i][j] - mu);
        double sd = sqrt(var / n);
        if (sd == 0)
            sd = 1;
        for (int i = 0; i < n; i++)
            X[i][j] = (X[i][j] - mu) / sd;
    }
    for (int i = 0; i < n; i++)
        X[i][k] = 1; /* the bias */
    int m = k + 1;
    static double A[MAXK + 1][MAXK + 2];
    for (int a = 0; a < m; a++) {
        for (int b = 0; b < m; b++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += X[i][a] * X[i][b];
            A[a][b] = s;
        }
        double s = 0;
        for (int i = 0; i < n; i++)
            s += X[i][a] * y[i];
        A[a][m] = s;
    }
    /* Gauss-Jordan with partial pivoting */
    for (int c = 0; c < m; c++) {
        int p = c;
        for (int r = c + 1; r < m; r++)
            if (fabs(A[r][c]) > fabs(A[p][c]))
                p = r;
        for (int j = 0; j <= m; j++) {
            double t = A[c][j];
            A[c][j] = A[p][j];
            A[p][j] = t;
        }
        for (int r = 0; r < m; r++) {
            if (r == c)
                continue;
            double q = A[r][c] / A[c][c];
            for (int j = c; j <= m; j++)
                A[r][j] -= q * A[c][j];
        }
    }
    for (int a = 0; a < m; a++)
        printf("%.17g\n", A[a][m] / A[a][a]);
    return 0;
}
