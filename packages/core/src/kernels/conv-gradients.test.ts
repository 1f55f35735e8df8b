import { describeGradientCases, gradientCaseGroups } from './gradient-cases.test-util';

describeGradientCases('convolution gradients', gradientCaseGroups.convolution);
